"""The PostgreSQL pool, and the edge where driver errors become domain errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from modelregistry.domain.errors import Aborted, Unavailable

# Failures that mean "the database is not there right now", as opposed to a bad query.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.ConnectionFailureError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InterfaceError,
)
# Re-exported so the service layer can name the type without importing the driver.
Connection = asyncpg.Connection

_CONFLICT = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)


async def _keep_session_state(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's per-release RESET ALL/UNLISTEN round trip.

    Our connections hold no session state (no SET, LISTEN or advisory locks; migrations use
    their own connection), and asyncpg still rolls back any open transaction on release.
    """


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


class Database:
    """One asyncpg pool per process. Connections come and go; the pool outlives outages."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Database:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                reset=_keep_session_state,
                command_timeout=30,
                # Keep statement caching: every hot query is a fixed text with parameters.
                max_inactive_connection_lifetime=300,
            )
        except _UNREACHABLE as exc:
            raise Unavailable(f"cannot reach PostgreSQL: {type(exc).__name__}") from exc
        return cls(pool)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Close gracefully; connections still held after `timeout_s` are cut."""
        try:
            await asyncio.wait_for(self._pool.close(), timeout_s)
        except TimeoutError:
            self._pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for reads or a single self-contained statement."""
        async with translate_errors(), self._pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with translate_errors(), self._pool.acquire() as conn, conn.transaction():
            yield conn

    async def ping(self, deadline_s: float) -> None:
        async with translate_errors(), self._pool.acquire(timeout=deadline_s) as conn:
            await conn.fetchval("SELECT 1", timeout=deadline_s)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except _CONFLICT as exc:
        raise Aborted("a concurrent change conflicted with this one; retry the call") from exc
    except _UNREACHABLE as exc:
        raise Unavailable("PostgreSQL is unreachable; retry with backoff") from exc
