"""Forward-only schema migrations: numbered .sql files applied under an advisory lock."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Any constant shared by every replica; two replicas starting together queue on it.
_MIGRATION_LOCK_KEY = 0x6D6F64656C726567  # "modelreg"
_FILE_PATTERN = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    folder = resources.files("modelregistry.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_PATTERN.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    return found


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the names applied. Safe to run from many replicas."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        try:
            return await _apply_pending(conn, bundled_migrations())
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def check_schema(conn: asyncpg.Connection) -> None:
    """Refuse a database that lacks migrations or is newer than this code."""
    known = bundled_migrations()
    applied = await _applied(conn)
    newest_known = known[-1].number if known else 0
    if applied and max(applied) > newest_known:
        raise MigrationError(
            f"the database schema is at migration {max(applied)}, newer than this server "
            f"({newest_known}): upgrade the server"
        )
    missing = [m.name for m in known if m.number not in applied]
    if missing:
        raise MigrationError(f"the database lacks migrations {missing}: run `modelreg migrate`")


async def _applied(conn: asyncpg.Connection) -> dict[int, str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT number, checksum FROM schema_migrations")
    return {row["number"]: row["checksum"] for row in rows}


async def _apply_pending(conn: asyncpg.Connection, known: list[Migration]) -> list[str]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               number      integer PRIMARY KEY,
               name        text NOT NULL,
               checksum    text NOT NULL,
               applied_at  timestamptz NOT NULL DEFAULT now())"""
    )
    applied = await _applied(conn)
    newest_known = known[-1].number if known else 0
    if applied and max(applied) > newest_known:
        raise MigrationError(
            f"the database schema is at migration {max(applied)}, newer than this code "
            f"({newest_known}): upgrade modelreg before migrating"
        )
    done = []
    for migration in known:
        recorded = applied.get(migration.number)
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.name} was changed after it was applied; "
                    "migrations are forward-only: add a new one instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (number, name, checksum) VALUES ($1, $2, $3)",
                migration.number,
                migration.name,
                migration.checksum,
            )
        done.append(migration.name)
    return done
