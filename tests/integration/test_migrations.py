"""Migrations: applied once under a lock, however many replicas start together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from support.stores import StoreEndpoints

from modelregistry.storage.migrate import (
    MigrationError,
    bundled_migrations,
    check_schema,
    migrate,
)


async def _fresh_database(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


async def test_replicas_migrating_at_once_apply_each_migration_once(
    store_endpoints: StoreEndpoints,
) -> None:
    dsn = await _fresh_database(store_endpoints.admin_database_url, "migrate_race")

    results = await asyncio.gather(*(migrate(dsn) for _ in range(4)))

    applied = [names for names in results if names]
    assert applied == [[m.name for m in bundled_migrations()]]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT number FROM schema_migrations ORDER BY number")
        await check_schema(conn)
    finally:
        await conn.close()
    assert [r["number"] for r in rows] == [m.number for m in bundled_migrations()]


async def test_a_database_newer_than_the_code_is_refused(migrated_database_url: str) -> None:
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (number, name, checksum) VALUES (9999, 'x', 'y')"
        )
        with pytest.raises(MigrationError, match="newer than this server"):
            await check_schema(conn)
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="newer than this code"):
        await migrate(migrated_database_url)


async def test_an_edited_migration_is_refused(migrated_database_url: str) -> None:
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE number = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(migrated_database_url)
