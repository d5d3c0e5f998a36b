"""The append-only audit log: one row per mutation, written in the mutation's transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from modelregistry.domain.models import CallContext


async def insert_audit(
    conn: asyncpg.Connection,
    ctx: CallContext,
    action: str,
    resource: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await conn.execute(
        """INSERT INTO audit_events (principal, action, resource, request_id, before, after)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        ctx.principal,
        action,
        resource,
        ctx.request_id,
        before,
        after,
    )
