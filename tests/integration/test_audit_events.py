"""AuditService: the audit log listed with filters and pages, and followed as it commits.

What a CI pipeline relies on: events are numbered 1, 2, 3, ... in the order their transactions
committed, with no gaps, so a watcher that has seen N has seen everything up to N; a
transaction that commits late holds back the ones behind it instead of being skipped; every
replica's watchers see every replica's changes; reconnecting after the last sequence received
misses nothing; and a reader that stops reading never slows writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from integration.helpers import create_version, error_details
from support.auth import bearer_interceptors, make_token
from support.server import authenticated_channel, running_server, s3_env
from support.stores import StoreEndpoints, unique_name
from typer.testing import CliRunner

from modelregistry.cli.main import app
from modelregistry.domain.access import Role
from modelregistry.storage.database import LISTENER_APPLICATION_NAME
from modelregistry.storage.migrate import _apply_pending, bundled_migrations
from modelregistry.v1 import audit_pb2, audit_service_pb2_grpc, model_pb2
from modelregistry.v1 import audit_service_pb2 as apb
from modelregistry.v1 import registry_service_pb2 as pb
from modelregistry.v1.registry_service_pb2_grpc import RegistryServiceStub

AuditStub = audit_service_pb2_grpc.AuditServiceStub
MODELREG = str(Path(sys.executable).with_name("modelreg"))
WAIT_S = 20.0


@pytest.fixture
def audit(channel: grpc.aio.Channel) -> AuditStub:
    return AuditStub(channel)


# -- helpers ---------------------------------------------------------------------------------


class Follower:
    """A WatchEvents call drained by a background task into a queue."""

    def __init__(self, stub: AuditStub, after: int = 0, **filter_fields: Any) -> None:
        request = apb.WatchEventsRequest(
            after_sequence=after, filter=audit_pb2.AuditEventFilter(**filter_fields)
        )
        self.call = stub.WatchEvents(request)
        self.events: asyncio.Queue[audit_pb2.AuditEvent] = asyncio.Queue()
        self.error: grpc.aio.AioRpcError | None = None
        self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            async for event in self.call:
                await self.events.put(event)
        except grpc.aio.AioRpcError as error:
            self.error = error
        except asyncio.CancelledError:
            pass

    async def take(self, count: int, within: float = WAIT_S) -> list[audit_pb2.AuditEvent]:
        taken = []
        async with asyncio.timeout(within):
            while len(taken) < count:
                taken.append(await self.events.get())
        return taken

    async def nothing_for(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.events.empty(), f"unexpected event {self.events.get_nowait()}"

    async def close(self) -> None:
        self.call.cancel()
        await self.task


@contextlib.asynccontextmanager
async def following(
    stub: AuditStub, after: int = 0, **filter_fields: Any
) -> AsyncIterator[Follower]:
    follower = Follower(stub, after, **filter_fields)
    try:
        yield follower
    finally:
        await follower.close()


async def list_all(
    stub: AuditStub, after: int = 0, page_size: int = 0, **filter_fields: Any
) -> list[audit_pb2.AuditEvent]:
    events: list[audit_pb2.AuditEvent] = []
    token = ""
    while True:
        page = await stub.ListAuditEvents(
            apb.ListAuditEventsRequest(
                filter=audit_pb2.AuditEventFilter(**filter_fields),
                after_sequence=after,
                page_size=page_size,
                page_token=token,
            )
        )
        events.extend(page.audit_events)
        token = page.next_page_token
        if not token:
            return events


def sequences(events: Iterable[audit_pb2.AuditEvent]) -> list[int]:
    return [e.sequence for e in events]


def assert_dense(events: list[audit_pb2.AuditEvent], first: int) -> None:
    assert sequences(events) == list(range(first, first + len(events)))


async def head(stub: AuditStub) -> int:
    events = await list_all(stub, page_size=1000)
    return events[-1].sequence if events else 0


async def create_model(registry: RegistryServiceStub, model_id: str, **fields: Any) -> None:
    await registry.CreateModel(
        pb.CreateModelRequest(model_id=model_id, model=model_pb2.Model(**fields))
    )


async def update_description(registry: RegistryServiceStub, model_id: str, text: str) -> None:
    await registry.UpdateModel(
        pb.UpdateModelRequest(
            model=model_pb2.Model(name=f"models/{model_id}", description=text),
            update_mask={"paths": ["description"]},
        )
    )


def at(event: audit_pb2.AuditEvent) -> Timestamp:
    return event.event_time


def key(ts: Timestamp) -> tuple[int, int]:
    return ts.seconds, ts.nanos


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def server_process(
    database_url: str, stores: StoreEndpoints, bucket: str, port: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`modelreg serve` in its own process on the same database; SIGTERM on exit."""
    env = {
        **os.environ,
        **s3_env(stores, bucket),
        "MODELREG_DATABASE_URL": database_url,
        "MODELREG_LISTEN": f"127.0.0.1:{port}",
        "MODELREG_LOG_FORMAT": "json",
        "MODELREG_LOG_LEVEL": "warning",
        "MODELREG_MIGRATE_ON_START": "false",
        "MODELREG_SHUTDOWN_GRACE_S": "2",
    }
    process = await asyncio.create_subprocess_exec(
        MODELREG, "serve", env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_serving(f"127.0.0.1:{port}")
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), WAIT_S)
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_serving(target: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with grpc.aio.insecure_channel(target) as chan:
        health = health_pb2_grpc.HealthStub(chan)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{target} did not become SERVING")


# -- ListAuditEvents -------------------------------------------------------------------------


async def test_list_filters_by_resource_principal_action_and_time(
    registry: RegistryServiceStub,
    audit: AuditStub,
    registry_target: str,
    migrated_database_url: str,
) -> None:
    # `l_ama` would match `llama` under an unescaped LIKE; `llama-x` and `llama.b` share the
    # prefix `models/llama` but are not beneath it.
    for model_id in ("llama", "llama-x", "l_ama", "llama.b"):
        await create_model(registry, model_id)
    await create_version(registry, "llama")
    await create_version(registry, "llama")
    await create_version(registry, "l_ama")
    editor = await make_token(migrated_database_url, principal="ci-bot", role=Role.EDITOR)
    async with authenticated_channel(registry_target, editor) as chan:
        await update_description(RegistryServiceStub(chan), "llama", "tuned")

    everything = await list_all(audit)
    assert_dense(everything, 1)
    assert len(everything) == 8

    def beneath(name: str) -> list[int]:
        return [
            e.sequence
            for e in everything
            if e.resource == name or e.resource.startswith(name + "/")
        ]

    llama = await list_all(audit, resource="models/llama")
    assert sequences(llama) == beneath("models/llama")
    assert {e.resource for e in llama} == {
        "models/llama", "models/llama/versions/1", "models/llama/versions/2",
    }  # fmt: skip
    assert sequences(await list_all(audit, resource="models/l_ama")) == beneath("models/l_ama")
    assert [e.resource for e in await list_all(audit, resource="models/l_ama")] == [
        "models/l_ama", "models/l_ama/versions/1",
    ]  # fmt: skip
    one = await list_all(audit, resource="models/llama/versions/2")
    assert [(e.action, e.resource) for e in one] == [
        ("CreateModelVersion", "models/llama/versions/2")
    ]
    assert await list_all(audit, resource="models/llam") == []

    by_bot = await list_all(audit, principal="ci-bot")
    assert [(e.action, e.principal) for e in by_bot] == [("UpdateModel", "ci-bot")]
    assert sequences(await list_all(audit, principal="test-admin")) == [
        e.sequence for e in everything if e.principal == "test-admin"
    ]

    wanted = ["UpdateModel", "CreateModelVersion"]
    assert sequences(await list_all(audit, actions=wanted)) == [
        e.sequence for e in everything if e.action in wanted
    ]
    assert sequences(await list_all(audit, resource="models/llama", actions=["CreateModel"])) == [
        everything[0].sequence
    ]

    start, end = at(everything[2]), at(everything[6])
    assert sequences(await list_all(audit, start_time=start)) == [
        e.sequence for e in everything if key(at(e)) >= key(start)
    ]
    assert sequences(await list_all(audit, end_time=end)) == [
        e.sequence for e in everything if key(at(e)) < key(end)
    ]
    assert sequences(await list_all(audit, start_time=start, end_time=end)) == [
        e.sequence for e in everything if key(start) <= key(at(e)) < key(end)
    ]

    assert sequences(await list_all(audit, after=5)) == [6, 7, 8]
    assert sequences(await list_all(audit, after=8)) == []

    # The summaries, as structs: a creation has no `before`, an update both.
    created = everything[0]
    assert created.action == "CreateModel"
    assert not created.HasField("before")
    assert created.HasField("after")
    update = by_bot[0]
    assert update.before["description"] == ""
    assert update.after["description"] == "tuned"
    assert update.request_id

    # A viewer may read the log.
    viewer = await make_token(migrated_database_url, principal="auditor", role=Role.VIEWER)
    async with authenticated_channel(registry_target, viewer) as chan:
        assert sequences(await list_all(AuditStub(chan))) == sequences(everything)


async def test_list_pages_by_sequence_with_tokens_bound_to_the_query(
    registry: RegistryServiceStub, audit: AuditStub
) -> None:
    for number in range(7):
        await create_model(registry, f"m{number}")
        await update_description(registry, f"m{number}", "x")

    everything = await list_all(audit)
    assert len(everything) == 14
    paged = await list_all(audit, page_size=3)
    assert sequences(paged) == sequences(everything)
    updates = await list_all(audit, page_size=2, actions=["UpdateModel"])
    assert sequences(updates) == [e.sequence for e in everything if e.action == "UpdateModel"]
    after = await list_all(audit, after=4, page_size=4)
    assert sequences(after) == list(range(5, 15))

    first = await audit.ListAuditEvents(apb.ListAuditEventsRequest(page_size=5))
    assert sequences(first.audit_events) == [1, 2, 3, 4, 5]
    # A page written meanwhile does not shift the next page (keyset, not offset).
    await create_model(registry, "late")
    second = await audit.ListAuditEvents(
        apb.ListAuditEventsRequest(page_size=5, page_token=first.next_page_token)
    )
    assert sequences(second.audit_events) == [6, 7, 8, 9, 10]
    last = await audit.ListAuditEvents(apb.ListAuditEventsRequest(page_size=100))
    assert last.next_page_token == ""


async def test_bad_requests_are_invalid_argument(
    registry: RegistryServiceStub, audit: AuditStub
) -> None:
    for number in range(3):
        await create_model(registry, f"m{number}")
    page = await audit.ListAuditEvents(apb.ListAuditEventsRequest(page_size=1))
    token = page.next_page_token
    assert token
    later, earlier = Timestamp(seconds=2_000_000_000), Timestamp(seconds=1_000_000_000)

    bad: list[tuple[apb.ListAuditEventsRequest, str]] = [
        (apb.ListAuditEventsRequest(after_sequence=-1), "after_sequence"),
        (
            apb.ListAuditEventsRequest(
                filter=audit_pb2.AuditEventFilter(start_time=later, end_time=earlier)
            ),
            "filter.end_time",
        ),
        (
            apb.ListAuditEventsRequest(
                page_size=1, page_token=token, filter=audit_pb2.AuditEventFilter(principal="x")
            ),
            "page_token",
        ),
        (apb.ListAuditEventsRequest(page_size=1, page_token=token, after_sequence=1), "page_token"),
        (apb.ListAuditEventsRequest(page_token="not-a-token"), "page_token"),
        (
            apb.ListAuditEventsRequest(filter=audit_pb2.AuditEventFilter(resource="models//x")),
            "filter.resource",
        ),
        (
            apb.ListAuditEventsRequest(filter=audit_pb2.AuditEventFilter(resource="models/x/")),
            "filter.resource",
        ),
        (
            apb.ListAuditEventsRequest(filter=audit_pb2.AuditEventFilter(actions=["drop table"])),
            "filter.actions[0]",
        ),
        (
            apb.ListAuditEventsRequest(
                filter=audit_pb2.AuditEventFilter(start_time=Timestamp(seconds=10**12))
            ),
            "filter.start_time",
        ),
        (apb.ListAuditEventsRequest(page_size=-1), "page_size"),
    ]
    for request, field in bad:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await audit.ListAuditEvents(request)
        details = error_details(caught.value)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT, request
        assert field in details.bad_request_fields, (request, details)

    # The same page token with the same query still works.
    again = await audit.ListAuditEvents(apb.ListAuditEventsRequest(page_size=1, page_token=token))
    assert sequences(again.audit_events) == [2]

    for watch_request, field in [
        (apb.WatchEventsRequest(after_sequence=-3), "after_sequence"),
        (
            apb.WatchEventsRequest(
                filter=audit_pb2.AuditEventFilter(start_time=later, end_time=earlier)
            ),
            "filter.end_time",
        ),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in audit.WatchEvents(watch_request):
                pass
        details = error_details(caught.value)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in details.bad_request_fields


async def test_the_numbering_continues_a_log_written_before_it(
    store_endpoints: StoreEndpoints,
) -> None:
    name = unique_name("modelreg_audit_upgrade")
    admin = await asyncpg.connect(store_endpoints.admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(store_endpoints.database_url(name))
        try:
            before = [m for m in bundled_migrations() if m.number < 5]
            await _apply_pending(conn, before)
            insert = "INSERT INTO audit_events (principal, action, resource) VALUES ('p', 'A', 'r')"
            await conn.execute(insert)
            with contextlib.suppress(asyncpg.RaiseError):
                async with conn.transaction():  # the identity value it took is lost: a gap
                    await conn.execute(insert)
                    await conn.execute("DO $$ BEGIN RAISE EXCEPTION 'rolled back'; END $$")
            await conn.execute(insert)
            await _apply_pending(conn, bundled_migrations())
            for _ in range(2):
                await conn.execute(insert)
            numbers = await conn.fetch("SELECT sequence FROM audit_events ORDER BY sequence")
            assert [r["sequence"] for r in numbers] == [1, 3, 4, 5]
            assert await conn.fetchval("SELECT last FROM audit_sequence") == 5
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# -- WatchEvents: commit order -----------------------------------------------------------------


async def hold_audit_row(conn: asyncpg.Connection, label: str) -> int:
    """Insert an audit row in `conn`'s open transaction; the sequence it took."""
    sequence: int = await conn.fetchval(
        """INSERT INTO audit_events (principal, action, resource)
           VALUES ('held', 'HeldChange', $1) RETURNING sequence""",
        f"models/{label}",
    )
    return sequence


async def test_a_late_commit_holds_back_later_events_instead_of_being_skipped(
    registry: RegistryServiceStub, audit: AuditStub, migrated_database_url: str
) -> None:
    await create_model(registry, "before")
    async with following(audit) as watcher:
        assert sequences(await watcher.take(1)) == [1]

        conn = await asyncpg.connect(migrated_database_url)
        try:
            held = conn.transaction()
            await held.start()
            assert await hold_audit_row(conn, "held") == 2
            # The RPC's transaction commits its model, then waits for the counter.
            blocked = asyncio.create_task(create_model(registry, "after"))
            done, _ = await asyncio.wait({blocked}, timeout=1.0)
            assert not done, "a later audited write must wait for the held transaction"
            await watcher.nothing_for(0.3)
            await held.commit()
        finally:
            await conn.close()
        await asyncio.wait_for(blocked, WAIT_S)

        late, rpc = await watcher.take(2)
        assert (late.sequence, late.action, late.resource) == (2, "HeldChange", "models/held")
        assert (rpc.sequence, rpc.action, rpc.resource) == (3, "CreateModel", "models/after")
        await watcher.nothing_for(0.3)
    assert_dense(await list_all(audit), 1)


async def test_a_rolled_back_transaction_gives_its_number_back(
    registry: RegistryServiceStub, audit: AuditStub, migrated_database_url: str
) -> None:
    await create_model(registry, "before")
    async with following(audit) as watcher:
        assert sequences(await watcher.take(1)) == [1]

        conn = await asyncpg.connect(migrated_database_url)
        try:
            held = conn.transaction()
            await held.start()
            assert await hold_audit_row(conn, "doomed") == 2
            blocked = asyncio.create_task(create_model(registry, "after"))
            done, _ = await asyncio.wait({blocked}, timeout=1.0)
            assert not done
            await held.rollback()
        finally:
            await conn.close()
        await asyncio.wait_for(blocked, WAIT_S)

        (rpc,) = await watcher.take(1)
        assert (rpc.sequence, rpc.action) == (2, "CreateModel")
        await create_model(registry, "next")
        assert sequences(await watcher.take(1)) == [3]
    everything = await list_all(audit)
    assert_dense(everything, 1)
    assert "HeldChange" not in {e.action for e in everything}


async def test_watch_replays_then_follows_and_filters_in_sql(
    registry: RegistryServiceStub, audit: AuditStub
) -> None:
    await create_model(registry, "llama")
    await create_model(registry, "other")
    for _ in range(3):
        await create_version(registry, "llama")
    async with (
        following(audit) as everything,
        following(audit, after=2) as tail,
        following(audit, resource="models/llama", actions=["CreateModelVersion"]) as filtered,
    ):
        assert_dense(await everything.take(5), 1)
        assert sequences(await tail.take(3)) == [3, 4, 5]
        assert sequences(await filtered.take(3)) == [3, 4, 5]

        # Many events the filter skips, then one it matches: delivered, and nothing else.
        for number in range(20):
            await update_description(registry, "other", f"d{number}")
        version = await create_version(registry, "llama")
        (match,) = await filtered.take(1)
        assert (match.sequence, match.resource) == (26, version.name)
        assert_dense(await everything.take(21), 6)
        await filtered.nothing_for(0.3)


async def test_watchers_keep_following_when_the_listen_connection_is_cut(
    registry: RegistryServiceStub, audit: AuditStub, migrated_database_url: str
) -> None:
    listeners = """SELECT pid FROM pg_stat_activity
                   WHERE datname = current_database() AND application_name = $1"""
    await create_model(registry, "one")
    async with following(audit) as watcher:
        assert sequences(await watcher.take(1)) == [1]
        conn = await asyncpg.connect(migrated_database_url)
        try:
            (cut,) = [row["pid"] for row in await conn.fetch(listeners, LISTENER_APPLICATION_NAME)]
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", cut)
            for number in range(3):
                await create_model(registry, f"after-cut-{number}")
            assert sequences(await watcher.take(3)) == [2, 3, 4]
            # The server listens again, on a new connection.
            async with asyncio.timeout(WAIT_S):
                while True:
                    pids = [
                        r["pid"] for r in await conn.fetch(listeners, LISTENER_APPLICATION_NAME)
                    ]
                    if pids and cut not in pids:
                        break
                    await asyncio.sleep(0.1)
        finally:
            await conn.close()
        await create_model(registry, "later")
        assert sequences(await watcher.take(1)) == [5]


# -- WatchEvents: several writers and replicas -------------------------------------------------


async def test_concurrent_writers_are_seen_exactly_once_in_order(
    registry: RegistryServiceStub, audit: AuditStub
) -> None:
    writers, each = 8, 10
    await create_model(registry, "shared")

    async def write(index: int) -> None:
        model_id = f"w{index}"
        await create_model(registry, model_id)
        for step in range(each - 1):
            if step % 3 == 0:
                await create_version(registry, "shared")
            elif step % 3 == 1:
                await create_version(registry, model_id)
            else:
                await update_description(registry, model_id, f"step {step}")

    async with following(audit) as watcher:
        await asyncio.gather(*(write(i) for i in range(writers)))
        total = 1 + writers * each
        seen = await watcher.take(total)
        await watcher.nothing_for(0.3)
    assert sequences(seen) == list(range(1, total + 1))
    listed = await list_all(audit)
    assert [(e.sequence, e.action, e.resource) for e in seen] == [
        (e.sequence, e.action, e.resource) for e in listed
    ]
    versions = [e.resource for e in seen if e.resource.startswith("models/shared/versions/")]
    assert sorted(versions) == sorted(f"models/shared/versions/{n}" for n in range(1, 25))


async def test_two_server_processes_one_log_and_reconnecting_misses_nothing(
    registry: RegistryServiceStub,
    audit: AuditStub,
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
    admin_token: str,
) -> None:
    port = free_port()
    async with (
        server_process(migrated_database_url, store_endpoints, s3_bucket, port),
        authenticated_channel(f"127.0.0.1:{port}", admin_token) as chan_b,
    ):
        registry_b = RegistryServiceStub(chan_b)

        async def writes(stub: RegistryServiceStub, prefix: str, count: int) -> None:
            for number in range(count):
                await create_model(stub, f"{prefix}{number}")

        # Watching on A, writing through B and A at once.
        async with following(audit) as watcher:
            await asyncio.gather(writes(registry_b, "b", 25), writes(registry, "a", 25))
            seen = await watcher.take(50)
            await watcher.nothing_for(0.3)
        assert sequences(seen) == list(range(1, 51))
        names = {e.resource for e in seen}
        assert names == {f"models/{p}{n}" for p in "ab" for n in range(25)}

        # Disconnect mid-stream while B keeps writing; reconnect after the last one received.
        writing = asyncio.create_task(writes(registry_b, "c", 40))
        watcher = Follower(audit, after=50)
        received = await watcher.take(10)
        await watcher.close()
        last = received[-1].sequence
        await writing
        async with following(audit, after=last) as resumed:
            rest = await resumed.take(90 - last)
            await resumed.nothing_for(0.3)
        assert sequences(received + rest) == list(range(51, 91))

        # And the same log read through B's own watchers.
        async with following(AuditStub(chan_b), after=85) as on_b:
            assert sequences(await on_b.take(5)) == [86, 87, 88, 89, 90]
            await create_model(registry, "from-a")
            (event,) = await on_b.take(1)
            assert (event.sequence, event.resource) == (91, "models/from-a")
    assert_dense(await list_all(audit), 1)


async def test_a_stalled_watcher_never_slows_writers(
    registry: RegistryServiceStub,
    audit: AuditStub,
    registry_target: str,
    admin_token: str,
) -> None:
    await create_model(registry, "busy")
    # Watchers that read nothing, over a channel with a small flow-control window, more of
    # them than the server has database connections.
    options = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 65536)]
    chan = grpc.aio.insecure_channel(
        registry_target, options=options, interceptors=bearer_interceptors(admin_token)
    )
    stalled = [
        AuditStub(chan).WatchEvents(apb.WatchEventsRequest(after_sequence=0)) for _ in range(12)
    ]
    try:
        for call in stalled:
            await call.wait_for_connection()
        big = "x" * 8000  # about 16 kB per event with the before and after summaries
        started = time.monotonic()

        async def write(index: int) -> None:
            for step in range(10):
                await update_description(registry, "busy", f"{index}-{step}-{big}")

        await asyncio.wait_for(asyncio.gather(*(write(i) for i in range(4))), 30.0)
        elapsed = time.monotonic() - started
        assert elapsed < 30.0

        # The stalled watcher, once it reads, gets everything in order.
        received = []
        async with asyncio.timeout(WAIT_S):
            async for event in stalled[0]:
                received.append(event.sequence)
                if len(received) == 41:
                    break
        assert received == list(range(1, 42))
    finally:
        for call in stalled:
            call.cancel()
        await chan.close()


async def test_shutdown_ends_watches_with_unavailable_and_where_to_resume(
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
    admin_token: str,
) -> None:
    async with running_server(migrated_database_url, store_endpoints, s3_bucket) as target:
        chan = authenticated_channel(target, admin_token)
        await create_model(RegistryServiceStub(chan), "one")
        watcher = Follower(AuditStub(chan))
        assert sequences(await watcher.take(1)) == [1]
        stopping = time.monotonic()
    stopped = time.monotonic() - stopping
    await asyncio.wait_for(watcher.task, WAIT_S)
    await chan.close()
    assert watcher.error is not None
    details = error_details(watcher.error)
    assert details.code == grpc.StatusCode.UNAVAILABLE
    assert "after_sequence" in details.message
    assert details.error_infos[0].metadata["after_sequence"] == "1"
    assert stopped < 5.0


# -- CLI ---------------------------------------------------------------------------------------


async def cli(target: str, *args: str) -> Any:
    runner = CliRunner(env={"COLUMNS": "80"})
    result = await asyncio.to_thread(runner.invoke, app, [*args, "--target", target])
    assert result.exit_code == 0, result.output
    return result


async def test_cli_events_list(registry: RegistryServiceStub, registry_target: str) -> None:
    await create_model(registry, "llama")
    await create_version(registry, "llama")
    await create_model(registry, "other")

    listed = json.loads((await cli(registry_target, "events", "list", "--json")).stdout)
    assert [e["sequence"] for e in listed["auditEvents"]] == ["1", "2", "3"]
    assert listed["auditEvents"][1]["action"] == "CreateModelVersion"

    only_llama = json.loads(
        (await cli(registry_target, "events", "list", "--resource", "llama", "--json")).stdout
    )
    assert [e["resource"] for e in only_llama["auditEvents"]] == [
        "models/llama", "models/llama/versions/1",
    ]  # fmt: skip
    paged = json.loads(
        (
            await cli(
                registry_target, "events", "list", "--page-size", "1", "--all", "--after", "1",
                "--action", "CreateModel", "--since", "1h", "--json",
            )
        ).stdout
    )  # fmt: skip
    assert [e["resource"] for e in paged["auditEvents"]] == ["models/other"]

    # `watch --count` stops after that many events: "wait for the next change, then go on".
    watch = await asyncio.create_subprocess_exec(
        MODELREG, "events", "watch", "--json", "--after", "1", "--count", "2",
        "--target", registry_target, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, _ = await asyncio.wait_for(watch.communicate(), WAIT_S)
    assert watch.returncode == 0
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [line["sequence"] for line in lines] == ["2", "3"]

    # Piped into a reader that stops early, it stops too, without a traceback.
    pipeline = await asyncio.create_subprocess_shell(
        f"{MODELREG} events watch --json --target {registry_target} | head -n 1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert pipeline.stdout is not None
    first = await asyncio.wait_for(pipeline.stdout.readline(), WAIT_S)
    assert json.loads(first)["sequence"] == "1"
    await create_model(registry, "wakes-the-watch")
    _, stderr = await asyncio.wait_for(pipeline.communicate(), WAIT_S)
    assert stderr.decode() == ""

    # Who and what stay whole in an 80-column terminal; versions are named as in other tables.
    narrow = (await cli(registry_target, "events", "list")).stdout
    assert "CreateModelVersion" in narrow
    assert "test-admin" in narrow
    assert " llama/1 " in narrow
    assert "4 events" in narrow


async def read_lines(stream: asyncio.StreamReader, count: int) -> list[dict[str, Any]]:
    lines = []
    async with asyncio.timeout(WAIT_S):
        while len(lines) < count:
            line = await stream.readline()
            assert line, "the watch ended"
            lines.append(json.loads(line))
    return lines


async def test_cli_events_watch_prints_json_lines_and_reconnects(
    registry: RegistryServiceStub,
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
    admin_token: str,
) -> None:
    await create_model(registry, "first")
    port = free_port()
    target_b = f"127.0.0.1:{port}"
    async with server_process(migrated_database_url, store_endpoints, s3_bucket, port) as b:
        watch = await asyncio.create_subprocess_exec(
            MODELREG, "events", "watch", "--json", "--target", target_b,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert watch.stdout is not None
        assert watch.stderr is not None
        try:
            (first,) = await read_lines(watch.stdout, 1)
            assert (first["sequence"], first["action"], first["resource"]) == (
                "1", "CreateModel", "models/first",
            )  # fmt: skip
            await create_model(registry, "second")
            (second,) = await read_lines(watch.stdout, 1)
            assert second["resource"] == "models/second"

            # The server the watch follows stops; changes go on elsewhere; it comes back.
            b.terminate()
            await asyncio.wait_for(b.wait(), WAIT_S)
            for name in ("third", "fourth"):
                await create_model(registry, name)
            async with server_process(migrated_database_url, store_endpoints, s3_bucket, port):
                missed = await read_lines(watch.stdout, 2)
                assert [(e["sequence"], e["resource"]) for e in missed] == [
                    ("3", "models/third"), ("4", "models/fourth"),
                ]  # fmt: skip
                await create_model(registry, "fifth")
                (fifth,) = await read_lines(watch.stdout, 1)
                assert fifth["sequence"] == "5"
        finally:
            watch.terminate()
            await watch.wait()
        stderr = (await watch.stderr.read()).decode()
        assert "reconnecting" in stderr
        assert "after sequence 2" in stderr
