"""SQL for models. Every function takes the caller's connection, so the service decides
what runs in one transaction."""

from __future__ import annotations

import asyncpg

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import AlreadyExists
from modelregistry.domain.models import Model, ModelContent
from modelregistry.storage.rows import MODEL_COLUMNS, model_from_row


async def insert_model(
    conn: asyncpg.Connection, model_id: str, content: ModelContent, request_id: str | None
) -> Model:
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO models AS m (name, description, owner, labels, request_id)
                VALUES ($1, $2, $3, $4, $5) RETURNING {MODEL_COLUMNS}""",
            model_id,
            content.description,
            content.owner,
            content.labels,
            request_id,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "models_request_id_key":
            raise AlreadyExists(
                f"request_id {request_id!r} was already used to create another model; "
                "use a fresh request_id for each new model",
                reason=ErrorReason.REQUEST_ID_REUSED,
            ) from exc
        raise AlreadyExists(
            f"model {model_id!r} already exists; pick another id or update that model",
            reason=ErrorReason.MODEL_EXISTS,
        ) from exc
    return model_from_row(row)


async def find_model_by_request_id(conn: asyncpg.Connection, request_id: str) -> Model | None:
    row = await conn.fetchrow(
        f"SELECT {MODEL_COLUMNS} FROM models m WHERE m.request_id = $1", request_id
    )
    return model_from_row(row) if row else None


async def get_model(
    conn: asyncpg.Connection, model_id: str, *, for_update: bool = False
) -> Model | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {MODEL_COLUMNS} FROM models m WHERE m.name = $1{lock}", model_id
    )
    return model_from_row(row) if row else None


async def get_model_id(
    conn: asyncpg.Connection, model_id: str, *, for_update: bool = False
) -> int | None:
    lock = " FOR UPDATE" if for_update else ""
    value: int | None = await conn.fetchval(
        f"SELECT id FROM models WHERE name = $1{lock}", model_id
    )
    return value


async def update_model(conn: asyncpg.Connection, row_id: int, content: ModelContent) -> Model:
    row = await conn.fetchrow(
        f"""UPDATE models AS m SET description = $2, owner = $3, labels = $4,
                   revision = revision + 1, update_time = now()
            WHERE m.id = $1 RETURNING {MODEL_COLUMNS}""",
        row_id,
        content.description,
        content.owner,
        content.labels,
    )
    return model_from_row(row)


async def count_versions(conn: asyncpg.Connection, row_id: int) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM model_versions WHERE model_id = $1", row_id
    )
    return count


async def delete_model(conn: asyncpg.Connection, row_id: int) -> None:
    await conn.execute("DELETE FROM models WHERE id = $1", row_id)


async def has_open_uploads(conn: asyncpg.Connection, row_id: int) -> bool:
    open_: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM model_versions WHERE model_id = $1 AND status = 'PENDING')",
        row_id,
    )
    return open_
