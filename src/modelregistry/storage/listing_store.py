"""Keyset-paged, filtered reads of models, versions and their histories."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from modelregistry.domain.filtering import Expr
from modelregistry.domain.models import Model, ModelVersion, Stage, VersionMetrics
from modelregistry.domain.ordering import OrderKey
from modelregistry.domain.page_tokens import CursorValue
from modelregistry.storage.rows import (
    MODEL_COLUMNS,
    VERSION_COLUMNS,
    model_from_row,
    version_from_row,
)
from modelregistry.storage.sql_filters import compile_filter, compile_order

MODEL_FIELD_COLUMNS = {
    "name": "m.name",
    "display_name": "m.display_name",
    "owner": "m.owner",
    "description": "m.description",
    "labels": "m.labels",
    "create_time": "m.create_time",
    "update_time": "m.update_time",
}
VERSION_FIELD_COLUMNS = {
    "name": "m.name",
    "display_name": "m.display_name",
    "source": "v.source_repository",
    "owner": "m.owner",
    "version": "v.version",
    "stage": "v.stage",
    "status": "v.status",
    "description": "v.description",
    "run_id": "v.run_id",
    "created_by": "v.created_by",
    "labels": "v.labels",
    "parameters": "v.parameters",
    "metrics": "v.metrics",
    "create_time": "v.create_time",
    "update_time": "v.update_time",
}

Cursor = Sequence[object]


async def list_models(
    conn: asyncpg.Connection,
    where: Expr | None,
    order: Sequence[OrderKey],
    cursor: Cursor | None,
    limit: int,
) -> list[tuple[Model, list[CursorValue]]]:
    """Up to `limit` models after `cursor`, each with its own cursor."""
    params: list[object] = []
    keyset = compile_order(order, MODEL_FIELD_COLUMNS, "m.id", params)
    conditions = [compile_filter(where, MODEL_FIELD_COLUMNS, params)]
    if cursor is not None:
        conditions.append(keyset.after(cursor, params))
    params.append(limit)
    rows = await conn.fetch(
        f"""SELECT {MODEL_COLUMNS}, {keyset.select_list} FROM models m
            WHERE {" AND ".join(conditions)}
            ORDER BY {keyset.order_by} LIMIT ${len(params)}""",
        *params,
    )
    return [(model_from_row(r), keyset.cursor_from_row(r)) for r in rows]


async def list_versions(
    conn: asyncpg.Connection,
    model_id: str | None,
    where: Expr | None,
    order: Sequence[OrderKey],
    cursor: Cursor | None,
    limit: int,
) -> list[tuple[ModelVersion, list[CursorValue]]]:
    """Up to `limit` versions (of one model, or of all when `model_id` is None) after
    `cursor`, each with its own cursor."""
    params: list[object] = []
    keyset = compile_order(order, VERSION_FIELD_COLUMNS, "v.id", params)
    conditions = [compile_filter(where, VERSION_FIELD_COLUMNS, params)]
    if model_id is not None:
        params.append(model_id)
        conditions.append(f"m.name = ${len(params)}")
    if cursor is not None:
        conditions.append(keyset.after(cursor, params))
    params.append(limit)
    rows = await conn.fetch(
        f"""SELECT {VERSION_COLUMNS}, {keyset.select_list}
            FROM model_versions v JOIN models m ON m.id = v.model_id
            WHERE {" AND ".join(conditions)}
            ORDER BY {keyset.order_by} LIMIT ${len(params)}""",
        *params,
    )
    return [(version_from_row(r), keyset.cursor_from_row(r)) for r in rows]


async def summary_versions(
    conn: asyncpg.Connection, model_ids: Sequence[str]
) -> list[ModelVersion]:
    """For each of the models, in one statement: the highest version of each stage and every
    version an alias points at (what MLflow's RegisteredModel shows), highest first."""
    rows = await conn.fetch(
        f"""SELECT {VERSION_COLUMNS}
            FROM model_versions v JOIN models m ON m.id = v.model_id
            WHERE m.name = ANY($1::text[])
              AND (EXISTS (SELECT 1 FROM model_aliases a WHERE a.version_id = v.id)
                   OR v.id IN (SELECT DISTINCT ON (w.model_id, w.stage) w.id
                               FROM model_versions w JOIN models n ON n.id = w.model_id
                               WHERE n.name = ANY($1::text[])
                               ORDER BY w.model_id, w.stage, w.version DESC))
            ORDER BY m.name, v.version DESC""",
        list(model_ids),
    )
    return [version_from_row(r) for r in rows]


async def version_metrics(
    conn: asyncpg.Connection, model_id: str, limit: int
) -> list[VersionMetrics]:
    """Number, stage and metrics of the model's `limit` highest versions, highest first."""
    rows = await conn.fetch(
        """SELECT v.version, v.stage, v.metrics
           FROM model_versions v JOIN models m ON m.id = v.model_id
           WHERE m.name = $1 ORDER BY v.version DESC LIMIT $2""",
        model_id,
        limit,
    )
    return [VersionMetrics(r["version"], Stage(r["stage"]), r["metrics"]) for r in rows]
