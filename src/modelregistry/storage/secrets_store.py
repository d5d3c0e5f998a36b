"""Secrets every replica shares, kept in the database so no replica needs extra config."""

from __future__ import annotations

import asyncpg


async def page_token_key(conn: asyncpg.Connection) -> bytes:
    key: bytes = await conn.fetchval(
        "SELECT value FROM server_secrets WHERE name = 'page_token_key'"
    )
    return key
