"""The PostgreSQL pool, and the edge where driver errors become domain errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

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
# What asyncpg raises when a connection's protocol is not idle where it should be. Seen when
# PostgreSQL ends a session (restart, pg_terminate_backend): its FATAL message reaches an idle
# pooled connection, which asyncpg cannot parse while idle and leaves waiting for a sync point
# that never comes; until the socket's close is processed too, the pool still hands that
# connection out, and the next statement fails with "cannot switch to state N; another
# operation (2) is in progress". No statement of ours ran on it: the session is gone.
_PROTOCOL_BROKEN = asyncpg.InternalClientError
# How LISTEN connections show in pg_stat_activity.
LISTENER_APPLICATION_NAME = "modelreg-listener"


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

    def __init__(self, pool: asyncpg.Pool, dsn: str = "") -> None:
        self._pool = pool
        self._dsn = dsn  # for connections that must not come from the pool (LISTEN)

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
        return cls(pool, dsn)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Close gracefully; connections still held after `timeout_s` are cut."""
        try:
            await asyncio.wait_for(self._pool.close(), timeout_s)
        except TimeoutError:
            self._pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for reads or a single self-contained statement."""
        async with translate_errors(), self._pool.acquire() as proxy, _dropped_if_broken(proxy):
            yield _as_connection(proxy)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with (
            translate_errors(),
            self._pool.acquire() as proxy,
            _dropped_if_broken(proxy),
            proxy.transaction(),
        ):
            yield _as_connection(proxy)

    async def ping(self, deadline_s: float) -> None:
        async with translate_errors(), self._pool.acquire(timeout=deadline_s) as conn:
            await conn.fetchval("SELECT 1", timeout=deadline_s)

    async def listen(
        self, channel: str, on_notify: Callable[[str], None], deadline_s: float = 10.0
    ) -> Listener:
        """LISTEN on `channel` over a connection of its own; `on_notify` gets each payload.

        A pool connection would not do: the pool resets and replaces its connections, and a
        listener that lives as long as the process would take one away for good.
        """
        if not self._dsn:
            raise Unavailable("this database handle was made without a DSN; cannot LISTEN")
        async with translate_errors():
            conn = await asyncpg.connect(
                self._dsn,
                timeout=deadline_s,
                server_settings={"application_name": LISTENER_APPLICATION_NAME},
            )
        listener = Listener(conn)
        try:
            async with translate_errors():
                await conn.add_listener(channel, lambda *args: on_notify(args[-1]))
        except BaseException:
            await listener.close()
            raise
        return listener


class Listener:
    """A dedicated connection that LISTENs; `lost` is set once it closes for any reason."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: self.lost.set())
        if conn.is_closed():
            self.lost.set()

    async def ping(self, deadline_s: float) -> None:
        """Prove the connection still answers (a dead peer may not close it for minutes)."""
        async with translate_errors():
            await self._conn.fetchval("SELECT 1", timeout=deadline_s)

    async def close(self, timeout_s: float = 2.0) -> None:
        with suppress(Exception):
            await asyncio.wait_for(self._conn.close(), timeout_s)
        if not self._conn.is_closed():
            self._conn.terminate()
        self.lost.set()


def _as_connection(proxy: PoolConnectionProxy) -> asyncpg.Connection:
    """The pooled connection as the Connection every storage function takes.

    The pool lends a PoolConnectionProxy, which forwards each Connection method to the
    connection it holds and passes isinstance(proxy, asyncpg.Connection) (asyncpg's
    ConnectionMeta); the stubs declare the two classes apart, so the one conversion is here.
    """
    return cast(asyncpg.Connection, proxy)


@asynccontextmanager
async def _dropped_if_broken(conn: PoolConnectionProxy) -> AsyncIterator[None]:
    """Close a connection whose protocol broke, so that the pool never hands it out again."""
    try:
        yield
    except _PROTOCOL_BROKEN:
        conn.terminate()
        raise


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except _CONFLICT as exc:
        raise Aborted("a concurrent change conflicted with this one; retry the call") from exc
    except (*_UNREACHABLE, _PROTOCOL_BROKEN) as exc:
        raise Unavailable("PostgreSQL is unreachable; retry with backoff") from exc
