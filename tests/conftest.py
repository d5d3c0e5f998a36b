"""Session-wide real stores: one PostgreSQL and one S3 server (see tests/support/stores.py).

Fixtures (a contract other tests code against):
    store_endpoints          session: StoreEndpoints (DSN of the `postgres` DB, S3 endpoint and
                             credentials, and .postgres/.seaweed handles for fault tests)
    migrated_database_url    function: DSN of a fresh database with every migration applied
    s3_bucket                function: name of a fresh bucket on the S3 server
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from support.stores import StoreEndpoints, running_stores, unique_name

from modelregistry.storage.migrate import migrate


@pytest.fixture(scope="session")
def store_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreEndpoints]:
    # Sync on purpose: the children start from the main thread, which outlives them (their
    # parent-death signal fires when the spawning thread exits).
    with running_stores(tmp_path_factory.mktemp("stores")) as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
async def migrated_template(store_endpoints: StoreEndpoints) -> AsyncIterator[str]:
    """Name of a database migrated once per session, cloned by each test."""
    name = unique_name("modelreg_template")
    await _admin_execute(store_endpoints, f'CREATE DATABASE "{name}"')
    await migrate(store_endpoints.database_url(name))
    yield name
    await _drop_database(store_endpoints, name)


@pytest.fixture
async def migrated_database_url(
    store_endpoints: StoreEndpoints, migrated_template: str
) -> AsyncIterator[str]:
    name = unique_name("modelreg_test")
    await _admin_execute(
        store_endpoints, f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"'
    )
    yield store_endpoints.database_url(name)
    await _drop_database(store_endpoints, name)


@pytest.fixture
def s3_bucket(store_endpoints: StoreEndpoints) -> Iterator[str]:
    client = store_endpoints.s3_client()
    name = unique_name("test", separator="-")
    client.make_bucket(name)
    yield name
    with contextlib.suppress(Exception):  # best effort: the session's data dir goes anyway
        for entry in client.list_objects(name, recursive=True):
            if entry.object_name is not None:
                client.remove_object(name, entry.object_name)
        client.remove_bucket(name)


async def _admin_execute(endpoints: StoreEndpoints, sql: str) -> None:
    conn = await asyncpg.connect(endpoints.admin_database_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _drop_database(endpoints: StoreEndpoints, name: str) -> None:
    # WITH (FORCE) terminates the connections a test (or its server's pool) left open.
    if endpoints.postgres is not None and not endpoints.postgres.running:
        return  # a fault test left PostgreSQL stopped; its data dir goes with the session
    await _admin_execute(endpoints, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
