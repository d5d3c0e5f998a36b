"""Use cases of AccessService: tokens and grants (admin only), and who the caller is.

Each change writes one audit event as the last statement of its transaction. A change reaches
every replica's authentication cache within service.auth.CACHE_TTL_S seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from modelregistry.domain.access import Access, Grant, Role, Token
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import NotFound, Unauthenticated
from modelregistry.domain.models import CallContext, Page
from modelregistry.domain.names import model_name, principal_resource
from modelregistry.domain.page_tokens import (
    decode_cursor,
    next_page,
    page_token_binding,
)
from modelregistry.domain.paging import resolve_page_size
from modelregistry.service import auth
from modelregistry.storage import audit_store, auth_store
from modelregistry.storage.database import Connection, Database


def grant_summary(model: str | None, role: Role | None) -> dict[str, Any] | None:
    """A principal's role in one scope for the audit log; None when it holds none there."""
    if role is None:
        return None
    return {"model": model_name(model) if model is not None else None, "role": role.label}


def principal_not_found(principal: str) -> NotFound:
    return NotFound(
        f"there is no principal {principal!r}: a principal comes into being with its first "
        "token (CreateToken, `modelreg tokens create`)",
        reason=ErrorReason.PRINCIPAL_NOT_FOUND,
    )


class AccessService:
    def __init__(
        self, db: Database, page_key: bytes, on_change: Callable[[], None] = lambda: None
    ) -> None:
        """`on_change` runs after a revocation or grant change commits: this replica drops its
        cached authentications at once; the others catch up within their cache TTL."""
        self._db = db
        self._page_key = page_key
        self._on_change = on_change

    # -- tokens -----------------------------------------------------------------------------

    async def create_token(
        self, ctx: CallContext, principal: str, description: str, expire_time: datetime | None
    ) -> tuple[Token, str]:
        """The stored token and its secret; a new principal starts as a viewer everywhere."""
        ctx.require(Role.ADMIN, None, "manage tokens")
        async with self._db.transaction() as conn:
            principal_id = await auth_store.ensure_principal(conn, principal, None)
            token, secret = await auth.add_token(conn, principal_id, description, expire_time)
            await audit_store.insert_audit(
                conn, ctx, "CreateToken", token.name, None, auth.token_summary(token)
            )
        return token, secret

    async def list_tokens(
        self,
        ctx: CallContext,
        principal: str | None,
        show_inactive: bool,
        page_size: int,
        page_token: str,
    ) -> Page[Token]:
        ctx.require(Role.ADMIN, None, "list tokens")
        limit = resolve_page_size(page_size)
        binding = page_token_binding(
            "ListTokens", principal or "", "show_inactive" if show_inactive else "", ""
        )
        before: tuple[datetime, str] | None = None
        if page_token:
            create_time, token_id = decode_cursor(
                self._page_key, binding, page_token, datetime, str
            )
            before = (create_time, token_id)
        async with self._db.connection() as conn:
            tokens = await auth_store.list_tokens(conn, principal, show_inactive, before, limit + 1)
        return next_page(tokens, limit, self._page_key, binding, lambda t: [t.create_time, t.id])

    async def revoke_token(self, ctx: CallContext, token_id: str) -> Token:
        ctx.require(Role.ADMIN, None, "revoke tokens")
        async with self._db.transaction() as conn:
            before, after = await auth.revoke(conn, token_id)
            await audit_store.insert_audit(
                conn, ctx, "RevokeToken", after.name,
                auth.token_summary(before), auth.token_summary(after),
            )  # fmt: skip
        self._on_change()
        return after

    # -- grants -----------------------------------------------------------------------------

    async def set_grant(self, ctx: CallContext, grant: Grant) -> Grant:
        """Give `grant.role` in its scope, replacing the role the principal had there."""
        ctx.require(Role.ADMIN, None, "manage grants")
        async with self._db.transaction() as conn:
            principal_id, role_everywhere = await self._principal(conn, grant.principal)
            if grant.model is None:
                before: Role | None = role_everywhere
                await auth_store.set_role(conn, principal_id, grant.role)
            else:
                before = await auth_store.model_grant(conn, principal_id, grant.model)
                await auth_store.grant(conn, principal_id, grant.model, grant.role)
            await audit_store.insert_audit(
                conn, ctx, "SetGrant", principal_resource(grant.principal),
                grant_summary(grant.model, before), grant_summary(grant.model, grant.role),
            )  # fmt: skip
        self._on_change()
        return grant

    async def delete_grant(self, ctx: CallContext, principal: str, model: str | None) -> None:
        """Remove the grant on `model`, or reset the role everywhere to viewer (model None).

        A viewer everywhere has no role there to reset: that is NOT_FOUND, like a missing
        grant on a model, so a retried or mistaken call says it changed nothing.
        """
        ctx.require(Role.ADMIN, None, "manage grants")
        async with self._db.transaction() as conn:
            principal_id, role_everywhere = await self._principal(conn, principal)
            if model is None:
                if role_everywhere == Role.VIEWER:
                    raise NotFound(
                        f"{principal!r} holds no role everywhere beyond viewer, the role every "
                        "principal has; there is nothing to reset",
                        reason=ErrorReason.GRANT_NOT_FOUND,
                    )
                await auth_store.set_role(conn, principal_id, Role.VIEWER)
                before: Role = role_everywhere
                after = grant_summary(None, Role.VIEWER)
            else:
                removed = await auth_store.delete_grant(conn, principal_id, model)
                if removed is None:
                    raise NotFound(
                        f"{principal!r} has no grant on {model_name(model)}; list its grants "
                        "with ListGrants (`modelreg grants list --principal ...`)",
                        reason=ErrorReason.GRANT_NOT_FOUND,
                    )
                before, after = removed, None
            await audit_store.insert_audit(
                conn, ctx, "DeleteGrant", principal_resource(principal),
                grant_summary(model, before), after,
            )  # fmt: skip
        self._on_change()

    async def list_grants(
        self,
        ctx: CallContext,
        principal: str | None,
        model: str | None,
        page_size: int,
        page_token: str,
    ) -> Page[Grant]:
        ctx.require(Role.ADMIN, None, "list grants")
        limit = resolve_page_size(page_size)
        binding = page_token_binding("ListGrants", principal or "", model or "", "")
        after: tuple[str, str] | None = None
        if page_token:
            after = decode_cursor(self._page_key, binding, page_token, str, str)
        async with self._db.connection() as conn:
            grants = await auth_store.list_grants(conn, principal, model, after, limit + 1)
        return next_page(
            grants, limit, self._page_key, binding, lambda g: [g.principal, g.model or ""]
        )

    # -- the caller -------------------------------------------------------------------------

    def caller(self, ctx: CallContext) -> Access:
        """The caller as this replica's authentication sees it (at most 5 seconds old)."""
        if ctx.access is None:
            raise Unauthenticated(
                "GetCaller needs a bearer token", reason=ErrorReason.TOKEN_REQUIRED
            )
        return ctx.access

    # -- helpers ----------------------------------------------------------------------------

    async def _principal(self, conn: Connection, principal: str) -> tuple[int, Role]:
        found = await auth_store.lock_principal(conn, principal)
        if found is None:
            raise principal_not_found(principal)
        return found
