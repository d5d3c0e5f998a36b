"""SQL for model versions, their stages and aliases."""

from __future__ import annotations

import asyncpg

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import AlreadyExists
from modelregistry.domain.models import (
    AliasChange,
    CallContext,
    ModelVersion,
    Stage,
    StageTransition,
    VersionContent,
)
from modelregistry.domain.names import LATEST_ALIAS, VersionRef
from modelregistry.storage.rows import (
    VERSION_COLUMNS,
    VERSION_COLUMNS_WITH_MANIFEST,
    VERSION_CONTENT_COLUMNS,
    version_from_row,
    version_values,
)

# One statement: the counter row lock serialises concurrent creates (gapless numbers). The
# caller's transaction holds that lock until commit, so the audit row it writes next takes the
# audit_sequence lock (migration 0005) after the model row lock, as every other mutation does.
_CREATE_VERSION = f"""
WITH counter AS (
    UPDATE models SET latest_version = latest_version + 1
    WHERE name = $1
    RETURNING id, latest_version
), created AS (
    INSERT INTO model_versions AS v (model_id, version, created_by, request_id,
                                     {VERSION_CONTENT_COLUMNS})
    SELECT counter.id, counter.latest_version, $2, $3,
           $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
    FROM counter
    RETURNING v.*
)
SELECT created.*, $1::text AS model, ARRAY[]::text[] AS aliases FROM created
"""


async def create_version(
    conn: asyncpg.Connection,
    ctx: CallContext,
    model_id: str,
    content: VersionContent,
    request_id: str | None,
) -> ModelVersion | None:
    """Allocate the next number and insert; None if the model does not exist.

    AlreadyExists if `request_id` was used on this model before: the caller's transaction is
    then void (its counter increment rolls back, so no gap is left), and the version that
    request made is `find_version_by_request_id` (AIP-155).
    """
    try:
        row = await conn.fetchrow(
            _CREATE_VERSION, model_id, ctx.principal, request_id, *version_values(content)
        )
    except asyncpg.UniqueViolationError as exc:
        if request_id is None:
            raise
        raise AlreadyExists(
            f"request_id {request_id!r} was already used on model {model_id!r}; use a fresh "
            "request_id for each new version",
            reason=ErrorReason.REQUEST_ID_REUSED,
        ) from exc
    return version_from_row(row) if row else None


async def find_version_by_request_id(
    conn: asyncpg.Connection, model_id: str, request_id: str
) -> ModelVersion | None:
    row = await conn.fetchrow(
        f"""SELECT {VERSION_COLUMNS} FROM model_versions v JOIN models m ON m.id = v.model_id
            WHERE m.name = $1 AND v.request_id = $2""",
        model_id,
        request_id,
    )
    return version_from_row(row) if row else None


_BY_NUMBER = f"""SELECT {VERSION_COLUMNS_WITH_MANIFEST}
FROM model_versions v JOIN models m ON m.id = v.model_id
WHERE m.name = $1 AND v.version = $2"""
_BY_ALIAS = f"""SELECT {VERSION_COLUMNS_WITH_MANIFEST} FROM model_aliases a
JOIN models m ON m.id = a.model_id JOIN model_versions v ON v.id = a.version_id
WHERE m.name = $1 AND a.alias = $2"""
_LATEST = f"""SELECT {VERSION_COLUMNS_WITH_MANIFEST}
FROM model_versions v JOIN models m ON m.id = v.model_id
WHERE m.name = $1 ORDER BY v.version DESC LIMIT 1"""


async def get_version(
    conn: asyncpg.Connection, ref: VersionRef, *, for_update: bool = False
) -> ModelVersion | None:
    lock = " FOR UPDATE OF v" if for_update else ""
    if ref.number is not None:
        row = await conn.fetchrow(_BY_NUMBER + lock, ref.model, ref.number)
    elif ref.alias == LATEST_ALIAS:
        row = await conn.fetchrow(_LATEST + lock, ref.model)
    else:
        row = await conn.fetchrow(_BY_ALIAS + lock, ref.model, ref.alias)
    return version_from_row(row) if row else None


async def get_version_by_id(conn: asyncpg.Connection, row_id: int) -> ModelVersion:
    row = await conn.fetchrow(
        f"""SELECT {VERSION_COLUMNS} FROM model_versions v JOIN models m ON m.id = v.model_id
            WHERE v.id = $1""",
        row_id,
    )
    return version_from_row(row)


async def update_version_content(
    conn: asyncpg.Connection, row_id: int, content: VersionContent
) -> ModelVersion:
    await conn.execute(
        f"""UPDATE model_versions SET ({VERSION_CONTENT_COLUMNS}) =
                ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14),
                revision = revision + 1, update_time = now()
            WHERE id = $1""",
        row_id,
        *version_values(content),
    )
    return await get_version_by_id(conn, row_id)


async def delete_version(conn: asyncpg.Connection, ctx: CallContext, version: ModelVersion) -> None:
    """Delete the version; its aliases go with it, and their history says so."""
    await conn.execute(
        """INSERT INTO alias_changes (model_id, alias, from_version, to_version, principal)
           SELECT a.model_id, a.alias, $2, NULL, $3 FROM model_aliases a WHERE a.version_id = $1""",
        version.id,
        version.version,
        ctx.principal,
    )
    await conn.execute("DELETE FROM model_versions WHERE id = $1", version.id)


async def lock_model_row(conn: asyncpg.Connection, model_id: str) -> int | None:
    """Serialise stage and alias moves per model by locking its row."""
    row_id: int | None = await conn.fetchval(
        "SELECT id FROM models WHERE name = $1 FOR UPDATE", model_id
    )
    return row_id


async def production_holder(conn: asyncpg.Connection, model_row_id: int) -> ModelVersion | None:
    row = await conn.fetchrow(
        f"""SELECT {VERSION_COLUMNS} FROM model_versions v JOIN models m ON m.id = v.model_id
            WHERE v.model_id = $1 AND v.stage = 'PRODUCTION'""",
        model_row_id,
    )
    return version_from_row(row) if row else None


async def move_stage(
    conn: asyncpg.Connection, ctx: CallContext, version: ModelVersion, target: Stage, reason: str
) -> ModelVersion:
    row = await conn.fetchrow(
        f"""WITH v AS (
               UPDATE model_versions SET stage = $2, revision = revision + 1, update_time = now()
               WHERE id = $1 RETURNING *
           ), recorded AS (
               INSERT INTO stage_transitions (version_id, from_stage, to_stage, reason, principal)
               VALUES ($1, $3, $2, $4, $5)
           )
           SELECT {VERSION_COLUMNS} FROM v JOIN models m ON m.id = v.model_id""",
        version.id,
        target.value,
        version.stage.value,
        reason,
        ctx.principal,
    )
    return version_from_row(row)


async def set_alias(
    conn: asyncpg.Connection, ctx: CallContext, model_row_id: int, alias: str, version: ModelVersion
) -> int | None:
    """Point `alias` at `version`; return the number that held it before (None if new)."""
    previous: int | None = await conn.fetchval(
        """SELECT v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id
           WHERE a.model_id = $1 AND a.alias = $2""",
        model_row_id,
        alias,
    )
    await conn.execute(
        """INSERT INTO model_aliases (model_id, alias, version_id) VALUES ($1, $2, $3)
           ON CONFLICT (model_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id""",
        model_row_id,
        alias,
        version.id,
    )
    if previous != version.version:
        await _record_alias_change(conn, ctx, model_row_id, alias, previous, version.version)
    return previous


async def delete_alias(
    conn: asyncpg.Connection, ctx: CallContext, model_row_id: int, alias: str
) -> int | None:
    """Remove `alias`; return the id of the version that held it (None if there was none)."""
    row = await conn.fetchrow(
        """DELETE FROM model_aliases a USING model_versions v
           WHERE a.model_id = $1 AND a.alias = $2 AND v.id = a.version_id
           RETURNING v.id, v.version""",
        model_row_id,
        alias,
    )
    if row is None:
        return None
    await _record_alias_change(conn, ctx, model_row_id, alias, row["version"], None)
    held_by: int = row["id"]
    return held_by


async def _record_alias_change(
    conn: asyncpg.Connection,
    ctx: CallContext,
    model_row_id: int,
    alias: str,
    from_version: int | None,
    to_version: int | None,
) -> None:
    await conn.execute(
        """INSERT INTO alias_changes (model_id, alias, from_version, to_version, principal)
           VALUES ($1, $2, $3, $4, $5)""",
        model_row_id,
        alias,
        from_version,
        to_version,
        ctx.principal,
    )


async def list_stage_transitions(
    conn: asyncpg.Connection, model_id: str, number: int | None, after_id: int, limit: int
) -> list[StageTransition]:
    """Oldest first, ids greater than `after_id`; all versions of the model when number is None."""
    rows = await conn.fetch(
        """SELECT t.id, m.name AS model, v.version, t.from_stage, t.to_stage, t.reason,
                  t.principal, t.time
           FROM stage_transitions t JOIN model_versions v ON v.id = t.version_id
           JOIN models m ON m.id = v.model_id
           WHERE m.name = $1 AND ($2::bigint IS NULL OR v.version = $2) AND t.id > $3
           ORDER BY t.id LIMIT $4""",
        model_id,
        number,
        after_id,
        limit,
    )
    return [
        StageTransition(
            id=r["id"],
            model=r["model"],
            version=r["version"],
            from_stage=Stage(r["from_stage"]),
            to_stage=Stage(r["to_stage"]),
            reason=r["reason"],
            principal=r["principal"],
            time=r["time"],
        )
        for r in rows
    ]


async def list_alias_changes(
    conn: asyncpg.Connection, model_id: str, after_id: int, limit: int
) -> list[tuple[int, AliasChange]]:
    rows = await conn.fetch(
        """SELECT c.id, c.alias, c.from_version, c.to_version, c.principal, c.time
           FROM alias_changes c JOIN models m ON m.id = c.model_id
           WHERE m.name = $1 AND c.id > $2 ORDER BY c.id LIMIT $3""",
        model_id,
        after_id,
        limit,
    )
    return [
        (
            r["id"],
            AliasChange(
                alias=r["alias"],
                model=model_id,
                from_version=r["from_version"],
                to_version=r["to_version"],
                principal=r["principal"],
                time=r["time"],
            ),
        )
        for r in rows
    ]
