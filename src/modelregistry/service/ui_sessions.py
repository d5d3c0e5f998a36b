"""Web UI sessions: sign in with a token, resume on every request, sign out.

A session lives in PostgreSQL so that every replica knows it. The browser holds the session
id (random, 256 bits) in a cookie; the table holds only hashes. Each resume re-authenticates
the stored token hash through the shared Authenticator, so a revoked or expired token ends
its sessions within the same CACHE_TTL_S as API calls.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from modelregistry.domain.access import Access, token_hash
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import Unauthenticated
from modelregistry.service.auth import Authenticator
from modelregistry.storage import ui_sessions_store
from modelregistry.storage.database import Database

SESSION_LIFETIME = timedelta(hours=12)
# Expired rows are removed a few at a time by each sign-in, so the table never grows unbounded
# and no sign-in waits long for the cleanup.
_PRUNE_PER_SIGN_IN = 100
_SIGN_IN_AGAIN = "your session has ended; sign in again with your token"


def _id_hash(session_id: str) -> bytes:
    return hashlib.sha256(b"ui-session:" + session_id.encode()).digest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: derived from the secret id, so nothing more is stored,
    and one-way, so a page that shows it reveals nothing about the cookie."""
    return hmac.new(session_id.encode(), b"ui-csrf", hashlib.sha256).hexdigest()


def session_ended() -> Unauthenticated:
    return Unauthenticated(_SIGN_IN_AGAIN, reason=ErrorReason.SESSION_REQUIRED)


class SessionService:
    def __init__(
        self, db: Database, authenticator: Authenticator, lifetime: timedelta = SESSION_LIFETIME
    ) -> None:
        self._db = db
        self._authenticator = authenticator
        self._lifetime = lifetime

    async def sign_in(self, token: str | None) -> tuple[str, Access]:
        """A new session for a valid token: (session id for the cookie, the caller).
        Raises Unauthenticated for a missing, unknown, expired or revoked token."""
        access = await self._authenticator.authenticate(token)
        assert token is not None  # authenticate refuses an empty token
        session_id = secrets.token_urlsafe(32)
        expire_time = datetime.now(UTC) + self._lifetime
        async with self._db.transaction() as conn:
            await ui_sessions_store.delete_expired(conn, _PRUNE_PER_SIGN_IN)
            await ui_sessions_store.insert_session(
                conn, _id_hash(session_id), token_hash(token), expire_time
            )
        return session_id, access

    async def resume(self, session_id: str | None) -> Access:
        """The caller of a live session; Unauthenticated if the session is unknown, expired
        or signed out, or its token no longer authenticates (the session then ends)."""
        if not session_id:
            raise session_ended()
        id_hash = _id_hash(session_id)
        async with self._db.connection() as conn:
            stored_token_hash = await ui_sessions_store.live_token_hash(conn, id_hash)
        if stored_token_hash is None:
            raise session_ended()
        try:
            return await self._authenticator.access_for_digest(stored_token_hash)
        except Unauthenticated:
            await self.sign_out(session_id)
            raise session_ended() from None

    async def sign_out(self, session_id: str) -> None:
        async with self._db.connection() as conn:
            await ui_sessions_store.delete_session(conn, _id_hash(session_id))
