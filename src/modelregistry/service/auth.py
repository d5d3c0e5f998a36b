"""Authentication: bearer token → caller, with a short cache so most calls skip the lookup."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelregistry.domain.access import Access, Role, new_token, token_hash
from modelregistry.domain.errors import Unauthenticated
from modelregistry.storage import auth_store
from modelregistry.storage.database import Database

# A revoked or expired token stops working within this many seconds on every replica.
CACHE_TTL_S = 5.0
_CACHE_MAX = 10_000
_REFUSED = "a valid bearer token is required: send `authorization: Bearer <token>`"


class Authenticator:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[bytes, tuple[float, Access | None]] = {}

    async def authenticate(self, token: str | None) -> Access:
        # One answer for missing, unknown, expired and revoked: no hint whether a token exists.
        if not token:
            raise Unauthenticated(_REFUSED, reason="TOKEN_REQUIRED")
        digest = token_hash(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            access = cached[1]
        else:
            async with self._db.connection() as conn:
                access = await auth_store.access_for_token(conn, digest)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_TTL_S, access)
        if access is None:
            raise Unauthenticated(_REFUSED, reason="TOKEN_REQUIRED")
        return access


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str  # shown once; only its hash is stored


async def issue_token(
    db: Database,
    principal: str,
    role: Role,
    *,
    model: str | None = None,
    description: str = "",
    expires_in: timedelta | None = None,
) -> IssuedToken:
    """Create the principal if needed (role everywhere, or `role` on `model` only) and a token."""
    token = new_token()
    expire_time = datetime.now(UTC) + expires_in if expires_in is not None else None
    async with db.transaction() as conn:
        # A grant on one model leaves the principal's role everywhere as it was.
        principal_id = await auth_store.ensure_principal(
            conn, principal, None if model is not None else role
        )
        if model is not None:
            await auth_store.grant(conn, principal_id, model, role)
        token_id = await auth_store.insert_token(
            conn, principal_id, token_hash(token), description, expire_time
        )
    return IssuedToken(token_id, token)


async def revoke_token(db: Database, token_id: str) -> bool:
    try:
        uuid.UUID(token_id)
    except ValueError:
        return False
    async with db.connection() as conn:
        return await auth_store.revoke_token(conn, token_id)
