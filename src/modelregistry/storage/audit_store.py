"""The append-only audit log: one row per mutation, written in the mutation's transaction.

Sequence numbers come from the `audit_sequence` counter row (migration 0005) in commit order,
without gaps: the audit insert must be the LAST statement of its transaction, because from
then until commit every other audited transaction waits for this one.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from modelregistry.domain.audit import AuditEvent, AuditFilter, resource_scope
from modelregistry.domain.models import CallContext

_COLUMNS = "sequence, time, principal, action, resource, request_id, before, after"
# The expression of the index audit_events_scope: a name's first two segments.
_SCOPE = "(split_part(resource, '/', 1) || '/' || split_part(resource, '/', 2))"


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


async def list_events(
    conn: asyncpg.Connection, audit_filter: AuditFilter, after: int, limit: int
) -> list[AuditEvent]:
    """Up to `limit` matching events with a sequence above `after`, oldest first."""
    params: list[object] = [after]
    conditions = _filter_conditions(audit_filter, params)
    params.append(limit)
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM audit_events
            WHERE sequence > $1{conditions}
            ORDER BY sequence LIMIT ${len(params)}""",
        *params,
    )
    return [_event(row) for row in rows]


async def list_events_before(
    conn: asyncpg.Connection, audit_filter: AuditFilter, before: int | None, limit: int
) -> list[AuditEvent]:
    """Up to `limit` matching events with a sequence below `before` (all when None), newest
    first."""
    params: list[object] = [before]
    conditions = _filter_conditions(audit_filter, params)
    params.append(limit)
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM audit_events
            WHERE ($1::bigint IS NULL OR sequence < $1){conditions}
            ORDER BY sequence DESC LIMIT ${len(params)}""",
        *params,
    )
    return [_event(row) for row in rows]


async def read_committed(
    conn: asyncpg.Connection, audit_filter: AuditFilter, after: int, limit: int
) -> tuple[list[AuditEvent], int]:
    """Matching events above `after`, and the last sequence committed, from one snapshot.

    Numbers follow commit order, so every event up to that last sequence is visible in the
    snapshot: a reader that gets fewer than `limit` events has seen every match up to it,
    and may move its cursor there.
    """
    params: list[object] = [after]
    conditions = _filter_conditions(audit_filter, params)
    params.append(limit)
    columns = ", ".join(f"e.{name.strip()}" for name in _COLUMNS.split(","))
    rows = await conn.fetch(
        f"""SELECT s.last AS head, {columns} FROM audit_sequence s
            LEFT JOIN LATERAL (
                SELECT {_COLUMNS} FROM audit_events
                WHERE sequence > $1 AND sequence <= s.last{conditions}
                ORDER BY sequence LIMIT ${len(params)}
            ) e ON true
            ORDER BY e.sequence""",
        *params,
    )
    head: int = rows[0]["head"]
    return [_event(row) for row in rows if row["sequence"] is not None], head


async def committed_head(conn: asyncpg.Connection) -> int:
    """The sequence of the last event committed (0 for an empty log)."""
    head: int = await conn.fetchval("SELECT last FROM audit_sequence")
    return head


def _filter_conditions(audit_filter: AuditFilter, params: list[object]) -> str:
    """` AND ...` for each set field of the filter, values appended to `params`."""
    conditions = []
    if audit_filter.resource:
        params.extend([audit_filter.resource, audit_filter.resource + "/"])
        exact, children = len(params) - 1, len(params)
        condition = f"(resource = ${exact} OR starts_with(resource, ${children}))"
        scope = resource_scope(audit_filter.resource)
        if scope is not None:
            params.append(scope)
            # Served by the index audit_events_scope (migration 0005), in sequence order.
            condition = f"{_SCOPE} = ${len(params)} AND {condition}"
        conditions.append(condition)
    if audit_filter.principal:
        params.append(audit_filter.principal)
        conditions.append(f"principal = ${len(params)}")
    if audit_filter.actions:
        params.append(list(audit_filter.actions))
        conditions.append(f"action = ANY(${len(params)}::text[])")
    if audit_filter.start_time is not None:
        params.append(audit_filter.start_time)
        conditions.append(f"time >= ${len(params)}")
    if audit_filter.end_time is not None:
        params.append(audit_filter.end_time)
        conditions.append(f"time < ${len(params)}")
    return "".join(f" AND {condition}" for condition in conditions)


def _event(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        sequence=row["sequence"],
        time=row["time"],
        principal=row["principal"],
        action=row["action"],
        resource=row["resource"],
        request_id=row["request_id"],
        before=row["before"],
        after=row["after"],
    )
