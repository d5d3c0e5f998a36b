"""PostgreSQL restarting (and ending sessions) under concurrent load: every call either
succeeds or says UNAVAILABLE, never INTERNAL; nothing acknowledged is lost, and creates
retried with their request id make no duplicates."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import grpc
import pytest
from faults.fault_helpers import SERVING, serve_process
from google.protobuf.message import Message
from integration.artifact_helpers import wait_for_health
from integration.helpers import Stub
from support.stores import StoreEndpoints

from modelregistry.v1 import model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb

pytestmark = pytest.mark.faults

CREATORS = 6
VERSIONS_EACH = 6
READERS = 4
RESTARTS = 2
# Ending the server's sessions (as a restart does, to every one at once) over and over
# makes the rare moment a restart hits far more likely to be met.
TERMINATIONS = 25
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}
CALL_TIMEOUT_S = 30


class Load:
    """Concurrent creates (retried with their request id) and reads, with every code seen."""

    def __init__(self, registry: Stub, model: str) -> None:
        self.registry = registry
        self.model = model
        self.codes: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self.created: dict[str, str] = {}  # request id -> version name acknowledged
        self.done = asyncio.Event()

    def saw(self, error: grpc.aio.AioRpcError | None, what: str) -> None:
        code = grpc.StatusCode.OK if error is None else error.code()
        self.codes[code.name] += 1
        if code != grpc.StatusCode.OK and code not in RETRYABLE:
            self.failures.append(f"{what}: {code.name} {error.details() if error else ''}")

    async def create(self, worker: int) -> None:
        for n in range(VERSIONS_EACH):
            request_id = f"restart-{worker}-{n}"
            request = pb.CreateModelVersionRequest(
                parent=self.model, model_version=model_version_pb2.ModelVersion(),
                request_id=request_id,
            )  # fmt: skip
            while True:
                try:
                    version = await self.registry.CreateModelVersion(
                        request, timeout=CALL_TIMEOUT_S
                    )
                except grpc.aio.AioRpcError as error:
                    self.saw(error, "CreateModelVersion")
                    if error.code() not in RETRYABLE:
                        break
                    await asyncio.sleep(0.05 + random.random() * 0.1)
                    continue
                self.saw(None, "CreateModelVersion")
                self.created[request_id] = version.name
                break
            await asyncio.sleep(random.random() * 0.2)

    async def read(self) -> None:
        calls: list[Callable[[], Awaitable[Message]]] = [
            lambda: self.registry.ListModels(pb.ListModelsRequest(), timeout=CALL_TIMEOUT_S),
            lambda: self.registry.ListModelVersions(
                pb.ListModelVersionsRequest(parent=self.model), timeout=CALL_TIMEOUT_S
            ),
            lambda: self.registry.GetModel(
                pb.GetModelRequest(name=self.model), timeout=CALL_TIMEOUT_S
            ),
            lambda: self.registry.GetModelVersion(
                pb.GetModelVersionRequest(name=f"{self.model}/versions/1"), timeout=CALL_TIMEOUT_S
            ),
        ]
        while not self.done.is_set():
            call = random.choice(calls)
            try:
                await call()
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:  # version 1 may not exist yet
                    self.saw(error, "read")
            else:
                self.saw(None, "read")
            await asyncio.sleep(0.01)


async def _end_sessions(database_url: str) -> None:
    """pg_terminate_backend for every session of the server: what a restart does to them."""
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()"""
            )
        finally:
            await conn.close()


@pytest.mark.timeout(300)
async def test_postgres_restarting_under_load_gives_no_internal_and_loses_nothing(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, tmp_path: Path
) -> None:
    postgres = store_endpoints.postgres
    if postgres is None:
        pytest.skip("PostgreSQL is external (MODELREG_TEST_DATABASE_URL): cannot restart it")
    log = tmp_path / "serve.log"
    async with serve_process(migrated_database_url, store_endpoints, s3_bucket, log) as (
        _,
        channel,
    ):
        registry = Stub(channel)
        model = (await registry.CreateModel(pb.CreateModelRequest(model_id="restarts"))).name
        load = Load(registry, model)
        creators = asyncio.gather(*(load.create(w) for w in range(CREATORS)))
        readers = asyncio.gather(*(load.read() for _ in range(READERS)))
        try:
            for restart in range(RESTARTS):
                for _ in range(TERMINATIONS // RESTARTS):
                    await _end_sessions(migrated_database_url)
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)
                # From the main thread (children die with the thread that spawned them); the
                # server is a process of its own, so its calls in flight meet the restart.
                postgres.stop()
                await asyncio.sleep(0.5 + restart)
                postgres.start()
            await asyncio.wait_for(creators, 120)
        finally:
            if not postgres.running:
                postgres.start()
            load.done.set()
            await readers
            with contextlib.suppress(BaseException):
                await creators

        await wait_for_health(channel, SERVING)
        assert load.failures == [], f"{load.failures[:5]} codes={dict(load.codes)}"
        assert len(load.created) == CREATORS * VERSIONS_EACH, dict(load.codes)
        # Nothing acknowledged was lost, and no retry made a second version.
        listed = await registry.ListModelVersions(
            pb.ListModelVersionsRequest(parent=model, page_size=1000)
        )
        names = sorted(v.name for v in listed.model_versions)
        assert names == sorted(load.created.values()), dict(load.codes)
        assert sorted(v.version for v in listed.model_versions) == list(
            range(1, CREATORS * VERSIONS_EACH + 1)
        )
