"""Web UI sessions as stored: hashes of the session id and of the token, and an expiry."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert_session(
    conn: asyncpg.Connection, id_hash: bytes, token_hash: bytes, expire_time: datetime
) -> None:
    await conn.execute(
        "INSERT INTO ui_sessions (id_hash, token_hash, expire_time) VALUES ($1, $2, $3)",
        id_hash,
        token_hash,
        expire_time,
    )


async def live_token_hash(conn: asyncpg.Connection, id_hash: bytes) -> bytes | None:
    """The token hash of an unexpired session; None if it is unknown or expired."""
    token_hash: bytes | None = await conn.fetchval(
        "SELECT token_hash FROM ui_sessions WHERE id_hash = $1 AND expire_time > now()",
        id_hash,
    )
    return token_hash


async def delete_session(conn: asyncpg.Connection, id_hash: bytes) -> None:
    await conn.execute("DELETE FROM ui_sessions WHERE id_hash = $1", id_hash)


async def delete_expired(conn: asyncpg.Connection, limit: int) -> int:
    """Remove up to `limit` expired sessions; how many went."""
    deleted: int = await conn.fetchval(
        """WITH gone AS (
               DELETE FROM ui_sessions WHERE id_hash IN (
                   SELECT id_hash FROM ui_sessions WHERE expire_time <= now() LIMIT $1)
               RETURNING 1)
           SELECT count(*) FROM gone""",
        limit,
    )
    return deleted
