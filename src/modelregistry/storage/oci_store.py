"""SQL for the OCI distribution surface: versions with their files, tags, blobs by digest."""

from __future__ import annotations

import asyncpg

from modelregistry.domain.models import ModelVersion
from modelregistry.storage.rows import VERSION_COLUMNS_WITH_MANIFEST, version_from_row


async def ready_versions(conn: asyncpg.Connection, model_id: str) -> list[ModelVersion]:
    """Every READY version of the model with its files, newest first."""
    rows = await conn.fetch(
        f"""SELECT {VERSION_COLUMNS_WITH_MANIFEST}
            FROM model_versions v JOIN models m ON m.id = v.model_id
            WHERE m.name = $1 AND v.status = 'READY' ORDER BY v.version DESC""",
        model_id,
    )
    return [version_from_row(r) for r in rows]


async def version_with_manifest_by_id(conn: asyncpg.Connection, row_id: int) -> ModelVersion | None:
    row = await conn.fetchrow(
        f"""SELECT {VERSION_COLUMNS_WITH_MANIFEST}
            FROM model_versions v JOIN models m ON m.id = v.model_id WHERE v.id = $1""",
        row_id,
    )
    return version_from_row(row) if row else None


async def version_tags(
    conn: asyncpg.Connection, model_id: str
) -> list[tuple[int, bool, list[str]]]:
    """(number, READY?, aliases) of every version of the model, highest number first."""
    rows = await conn.fetch(
        """SELECT v.version, v.status = 'READY' AS ready,
                  ARRAY(SELECT a.alias FROM model_aliases a WHERE a.version_id = v.id) AS aliases
           FROM model_versions v JOIN models m ON m.id = v.model_id
           WHERE m.name = $1 ORDER BY v.version DESC""",
        model_id,
    )
    return [(r["version"], r["ready"], list(r["aliases"])) for r in rows]


async def blob_of_model(
    conn: asyncpg.Connection, model_id: str, sha256: str
) -> tuple[str, int] | None:
    """(object key, size) of content that is a file of a READY version of the model."""
    row = await conn.fetchrow(
        """SELECT b.object_key, b.size_bytes FROM artifacts a
           JOIN model_versions v ON v.id = a.version_id
           JOIN models m ON m.id = v.model_id
           JOIN blobs b ON b.sha256 = a.blob_sha256
           WHERE m.name = $1 AND a.blob_sha256 = $2 AND v.status = 'READY'
           LIMIT 1""",
        model_id,
        sha256,
    )
    return (row["object_key"], row["size_bytes"]) if row else None


async def model_ids(conn: asyncpg.Connection, after: str, limit: int) -> list[str]:
    """Model ids after `after` in byte order, at most `limit`."""
    rows = await conn.fetch(
        """SELECT name FROM models WHERE name COLLATE "C" > $1
           ORDER BY name COLLATE "C" LIMIT $2""",
        after,
        limit,
    )
    return [r["name"] for r in rows]


async def model_exists(conn: asyncpg.Connection, model_id: str) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM models WHERE name = $1)", model_id
    )
    return found
