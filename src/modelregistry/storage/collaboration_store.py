"""SQL for comments, flags and deployments on versions."""

from __future__ import annotations

import asyncpg

from modelregistry.domain.collaboration import (
    Comment,
    Deployment,
    DeploymentStatus,
    Flag,
    FlagSeverity,
    FlagState,
)
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import NotFound
from modelregistry.domain.models import CallContext, ModelVersion

# Every query joins the version and model so rows come back with their canonical names.
_COMMENT = """SELECT c.id, m.name AS model, v.version, c.author, c.body, c.parent_id,
       c.create_time, c.update_time
FROM comments c JOIN model_versions v ON v.id = c.version_id JOIN models m ON m.id = v.model_id"""
_FLAG = """SELECT f.id, m.name AS model, v.version, f.state, f.severity, f.reason, f.raised_by,
       f.create_time, f.resolved_by, f.resolution, f.resolve_time
FROM flags f JOIN model_versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id"""
_DEPLOYMENT = """SELECT d.id, m.name AS model, v.version, d.environment, d.endpoint, d.status,
       d.deployed_by, d.create_time, d.update_time
FROM deployments d JOIN model_versions v ON v.id = d.version_id
JOIN models m ON m.id = v.model_id"""


def _comment(row: asyncpg.Record) -> Comment:
    return Comment(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        author=row["author"],
        body=row["body"],
        parent_id=row["parent_id"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def _flag(row: asyncpg.Record) -> Flag:
    return Flag(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        state=FlagState(row["state"]),
        severity=FlagSeverity(row["severity"]),
        reason=row["reason"],
        raised_by=row["raised_by"],
        create_time=row["create_time"],
        resolved_by=row["resolved_by"],
        resolution=row["resolution"],
        resolve_time=row["resolve_time"],
    )


def _deployment(row: asyncpg.Record) -> Deployment:
    return Deployment(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        environment=row["environment"],
        endpoint=row["endpoint"],
        status=DeploymentStatus(row["status"]),
        deployed_by=row["deployed_by"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


# -- comments -------------------------------------------------------------------------------


async def insert_comment(
    conn: asyncpg.Connection,
    ctx: CallContext,
    version: ModelVersion,
    body: str,
    parent_id: int | None,
    request_id: str | None,
) -> Comment | None:
    """The new comment, or None when `request_id` was already used on this version."""
    try:
        row_id: int | None = await conn.fetchval(
            """INSERT INTO comments (version_id, parent_id, author, body, request_id)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (version_id, request_id) DO NOTHING RETURNING id""",
            version.id,
            parent_id,
            ctx.principal,
            body,
            request_id,
        )
    except asyncpg.ForeignKeyViolationError:
        # The comment being answered was deleted after it was looked up.
        raise NotFound(
            f"comment.parent_comment: {version.name} has no comment {parent_id}",
            reason=ErrorReason.COMMENT_NOT_FOUND,
        ) from None
    return None if row_id is None else await get_comment(conn, version.id, row_id)


async def get_comment(
    conn: asyncpg.Connection, version_id: int, comment_id: int, *, for_update: bool = False
) -> Comment | None:
    lock = " FOR UPDATE OF c" if for_update else ""
    row = await conn.fetchrow(
        _COMMENT + " WHERE c.version_id = $1 AND c.id = $2" + lock, version_id, comment_id
    )
    return _comment(row) if row else None


async def comment_by_request_id(
    conn: asyncpg.Connection, version_id: int, request_id: str
) -> Comment | None:
    row = await conn.fetchrow(
        _COMMENT + " WHERE c.version_id = $1 AND c.request_id = $2", version_id, request_id
    )
    return _comment(row) if row else None


async def list_comments(
    conn: asyncpg.Connection, version_id: int, after_id: int, limit: int
) -> list[Comment]:
    """Oldest first, ids greater than `after_id`."""
    rows = await conn.fetch(
        _COMMENT + " WHERE c.version_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3",
        version_id,
        after_id,
        limit,
    )
    return [_comment(r) for r in rows]


async def reply_ids(conn: asyncpg.Connection, comment_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM comments WHERE parent_id = $1 ORDER BY id LIMIT 20", comment_id
    )
    return [r["id"] for r in rows]


async def update_comment_body(conn: asyncpg.Connection, comment: Comment, body: str) -> Comment:
    await conn.execute(
        "UPDATE comments SET body = $2, update_time = now() WHERE id = $1", comment.id, body
    )
    row = await conn.fetchrow(_COMMENT + " WHERE c.id = $1", comment.id)
    return _comment(row)


async def delete_comment(conn: asyncpg.Connection, comment_id: int) -> None:
    await conn.execute("DELETE FROM comments WHERE id = $1", comment_id)


# -- flags ----------------------------------------------------------------------------------


async def insert_flag(
    conn: asyncpg.Connection,
    ctx: CallContext,
    version: ModelVersion,
    severity: FlagSeverity,
    reason: str,
    request_id: str | None,
) -> Flag | None:
    """The new flag, or None when `request_id` was already used on this version."""
    row_id: int | None = await conn.fetchval(
        """INSERT INTO flags (version_id, severity, reason, raised_by, request_id)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (version_id, request_id) DO NOTHING RETURNING id""",
        version.id,
        severity.value,
        reason,
        ctx.principal,
        request_id,
    )
    return None if row_id is None else await get_flag(conn, version.id, row_id)


async def get_flag(
    conn: asyncpg.Connection, version_id: int, flag_id: int, *, for_update: bool = False
) -> Flag | None:
    lock = " FOR UPDATE OF f" if for_update else ""
    row = await conn.fetchrow(
        _FLAG + " WHERE f.version_id = $1 AND f.id = $2" + lock, version_id, flag_id
    )
    return _flag(row) if row else None


async def flag_by_request_id(
    conn: asyncpg.Connection, version_id: int, request_id: str
) -> Flag | None:
    row = await conn.fetchrow(
        _FLAG + " WHERE f.version_id = $1 AND f.request_id = $2", version_id, request_id
    )
    return _flag(row) if row else None


async def list_flags(
    conn: asyncpg.Connection, version_id: int, state: FlagState | None, after_id: int, limit: int
) -> list[Flag]:
    """Oldest first, ids greater than `after_id`, only `state` unless it is None."""
    rows = await conn.fetch(
        _FLAG
        + """ WHERE f.version_id = $1 AND ($2::text IS NULL OR f.state = $2) AND f.id > $3
                    ORDER BY f.id LIMIT $4""",
        version_id,
        state.value if state else None,
        after_id,
        limit,
    )
    return [_flag(r) for r in rows]


async def open_flags(conn: asyncpg.Connection, version_id: int) -> list[Flag]:
    """Every OPEN flag of the version, oldest first: what blocks its promotion."""
    rows = await conn.fetch(
        _FLAG + " WHERE f.version_id = $1 AND f.state = 'OPEN' ORDER BY f.id", version_id
    )
    return [_flag(r) for r in rows]


async def resolve_flag(
    conn: asyncpg.Connection, ctx: CallContext, flag: Flag, resolution: str
) -> Flag:
    await conn.execute(
        """UPDATE flags SET state = 'RESOLVED', resolved_by = $2, resolution = $3,
                  resolve_time = now()
           WHERE id = $1""",
        flag.id,
        ctx.principal,
        resolution,
    )
    row = await conn.fetchrow(_FLAG + " WHERE f.id = $1", flag.id)
    return _flag(row)


# -- deployments ----------------------------------------------------------------------------


async def insert_deployment(
    conn: asyncpg.Connection,
    ctx: CallContext,
    version: ModelVersion,
    environment: str,
    endpoint: str,
    status: DeploymentStatus,
    request_id: str | None,
) -> Deployment | None:
    """The new deployment, or None when `request_id` was already used on this version."""
    row_id: int | None = await conn.fetchval(
        """INSERT INTO deployments (version_id, environment, endpoint, status, deployed_by,
                                    request_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (version_id, request_id) DO NOTHING RETURNING id""",
        version.id,
        environment,
        endpoint,
        status.value,
        ctx.principal,
        request_id,
    )
    return None if row_id is None else await get_deployment(conn, version.id, row_id)


async def get_deployment(
    conn: asyncpg.Connection, version_id: int, deployment_id: int, *, for_update: bool = False
) -> Deployment | None:
    lock = " FOR UPDATE OF d" if for_update else ""
    row = await conn.fetchrow(
        _DEPLOYMENT + " WHERE d.version_id = $1 AND d.id = $2" + lock, version_id, deployment_id
    )
    return _deployment(row) if row else None


async def deployment_by_request_id(
    conn: asyncpg.Connection, version_id: int, request_id: str
) -> Deployment | None:
    row = await conn.fetchrow(
        _DEPLOYMENT + " WHERE d.version_id = $1 AND d.request_id = $2", version_id, request_id
    )
    return _deployment(row) if row else None


async def list_deployments(
    conn: asyncpg.Connection, version_id: int, before_id: int | None, limit: int
) -> list[Deployment]:
    """Newest first, ids lower than `before_id` (all when None)."""
    rows = await conn.fetch(
        _DEPLOYMENT
        + """ WHERE d.version_id = $1 AND ($2::bigint IS NULL OR d.id < $2)
                          ORDER BY d.id DESC LIMIT $3""",
        version_id,
        before_id,
        limit,
    )
    return [_deployment(r) for r in rows]


async def set_deployment_status(
    conn: asyncpg.Connection, deployment: Deployment, status: DeploymentStatus
) -> Deployment:
    await conn.execute(
        "UPDATE deployments SET status = $2, update_time = now() WHERE id = $1",
        deployment.id,
        status.value,
    )
    row = await conn.fetchrow(_DEPLOYMENT + " WHERE d.id = $1", deployment.id)
    return _deployment(row)
