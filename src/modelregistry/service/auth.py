"""Authentication (bearer token → caller, with a short cache so most calls skip the lookup),
and the token steps AccessService and the DB-direct bootstrap command share."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from modelregistry.domain.access import (
    Access,
    Role,
    Token,
    new_token,
    rfc3339,
    token_hash,
    validate_principal,
)
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    Unauthenticated,
)
from modelregistry.domain.models import CallContext
from modelregistry.domain.names import model_name, parse_token_name, token_name, validate_model_id
from modelregistry.storage import audit_store, auth_store
from modelregistry.storage.database import Connection, Database

# A revoked or expired token, or a changed grant, takes effect within this many seconds on
# every replica.
CACHE_TTL_S = 5.0
_CACHE_MAX = 10_000
_REFUSED = "a valid bearer token is required: send `authorization: Bearer <token>`"
# Who the audit log says acted when `modelreg token` changed tokens straight in the database.
BOOTSTRAP_PRINCIPAL = "bootstrap"


class Authenticator:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[bytes, tuple[float, Access | None]] = {}

    def forget(self) -> None:
        """Drop every cached answer, so the next call of each token reads the database."""
        self._cache.clear()

    async def authenticate(self, token: str | None) -> Access:
        # One answer for missing, unknown, expired and revoked: no hint whether a token exists.
        if not token:
            raise Unauthenticated(_REFUSED, reason=ErrorReason.TOKEN_REQUIRED)
        return await self.access_for_digest(token_hash(token))

    async def access_for_digest(self, digest: bytes) -> Access:
        """The caller whose token hashes to `digest` (a pull token of the OCI surface carries
        the digest of the registry token it was exchanged for, so revocation still works)."""
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
            raise Unauthenticated(_REFUSED, reason=ErrorReason.TOKEN_REQUIRED)
        return access


# -- steps shared by CreateToken/RevokeToken and `modelreg token` -------------------------------


async def add_token(
    conn: Connection, principal_id: int, description: str, expire_time: datetime | None
) -> tuple[Token, str]:
    """A new token of the principal: as stored, and its secret (returned once, never stored)."""
    secret = new_token()
    stored = await auth_store.insert_token(
        conn, principal_id, token_hash(secret), description, expire_time
    )
    return stored, secret


async def revoke(conn: Connection, token_id: str) -> tuple[Token, Token]:
    """Revoke a live token: (before, after). NotFound if unknown, FailedPrecondition if revoked."""
    current = await auth_store.get_token(conn, token_id, for_update=True)
    if current is None:
        raise NotFound(
            f"there is no token {token_name(token_id)}; list them with ListTokens "
            "(`modelreg tokens list --all-states`)",
            reason=ErrorReason.TOKEN_NOT_FOUND,
        )
    revoked = await auth_store.revoke_token(conn, token_id)
    if revoked is None:
        assert current.revoke_time is not None  # the row is locked: nothing else revoked it
        revoked_at = rfc3339(current.revoke_time)
        raise FailedPrecondition(
            f"{current.name} was already revoked at {revoked_at}",
            reason=ErrorReason.TOKEN_ALREADY_REVOKED,
            violations=[PreconditionViolation("REVOKED", current.name, f"revoked at {revoked_at}")],
        )
    return current, revoked


def token_summary(token: Token) -> dict[str, Any]:
    """A token for the audit log: who it is for and until when. Never its secret or hash."""
    summary: dict[str, Any] = {
        "principal": token.principal,
        "description": token.description,
        "expire_time": rfc3339(token.expire_time) if token.expire_time else None,
    }
    if token.revoke_time is not None:
        summary["revoke_time"] = rfc3339(token.revoke_time)
    return summary


# -- the bootstrap path: straight against PostgreSQL, no caller to check ----------------------


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
    audit_as: str | None = None,
) -> IssuedToken:
    """Create the principal if needed (role everywhere, or `role` on `model` only) and a token.

    With `audit_as`, one CreateToken audit event by that principal records the token and the
    role it was given (`modelreg token create` passes BOOTSTRAP_PRINCIPAL; test fixtures and
    `modelreg dev` write none).
    """
    validate_principal(principal, "principal")
    if model is not None:
        validate_model_id(model, "model")
    expire_time = datetime.now(UTC) + expires_in if expires_in is not None else None
    async with db.transaction() as conn:
        # A grant on one model leaves the principal's role everywhere as it was.
        principal_id = await auth_store.ensure_principal(
            conn, principal, None if model is not None else role
        )
        if model is not None:
            await auth_store.grant(conn, principal_id, model, role)
        stored, secret = await add_token(conn, principal_id, description, expire_time)
        if audit_as is not None:
            granted = {"model": model_name(model) if model else None, "role": role.label}
            await audit_store.insert_audit(
                conn, _internal(audit_as), "CreateToken", stored.name, None,
                token_summary(stored) | {"grant": granted},
            )  # fmt: skip
    return IssuedToken(stored.id, secret)


async def revoke_token(db: Database, token_id: str, *, audit_as: str | None = None) -> bool:
    """Revoke a token by id (or `tokens/{id}`); False if it is unknown or revoked already."""
    try:
        token_id = parse_token_name(
            token_id if token_id.startswith("tokens/") else f"tokens/{token_id}", "token"
        )
    except InvalidArgument:
        return False
    try:
        async with db.transaction() as conn:
            before, after = await revoke(conn, token_id)
            if audit_as is not None:
                await audit_store.insert_audit(
                    conn, _internal(audit_as), "RevokeToken", after.name,
                    token_summary(before), token_summary(after),
                )  # fmt: skip
    except (NotFound, FailedPrecondition):
        return False
    return True


def _internal(principal: str) -> CallContext:
    return CallContext(principal=principal, request_id=f"{principal}-{uuid.uuid4().hex}")
