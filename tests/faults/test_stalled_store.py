"""A hung object store (SeaweedFS stopped with SIGSTOP: connections accepted, never
answered) costs a caller UNAVAILABLE after the configured deadline, not minutes; nothing is
lost, and everything resumes once the store answers again."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from faults.fault_helpers import NOT_SERVING, SERVING, free_port, frozen, seaweed_of, serve_process
from integration.artifact_helpers import (
    ACTIVE,
    MIB,
    PART,
    Artifacts,
    LocalFile,
    ResumeLog,
    assert_download_matches,
    download,
    new_version,
    query,
    resume_upload,
    start_upload,
    upload,
    wait_committed,
    wait_for_health,
    write_requests,
)
from integration.helpers import Stub, assert_clean_message
from support.auth import make_token
from support.stores import StoreEndpoints

from modelregistry import client
from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1.artifact_service_pb2_grpc import ArtifactServiceStub

pytestmark = pytest.mark.faults

# The server's store deadline in this test, and the callers' own: a call still waiting on the
# hung store when the caller's deadline comes ends DEADLINE_EXCEEDED, which fails the test.
STORE_DEADLINE_S = 3
CALLER_TIMEOUT_S = 60


def _paused_stream(
    target: str, token: str, upload_id: str, file: LocalFile, pause_at: int, go_on: threading.Event
) -> grpc.RpcError | None:
    """A whole-file Write stream that stops sending at `pause_at` until `go_on`; returns its
    error. The sync client: grpc.aio can report INTERNAL instead of the server's status when
    the server ends a stream it is still writing to (grpc/grpc#36066)."""

    def requests() -> Iterator[apb.WriteRequest]:
        for request in write_requests(upload_id, file):
            if request.offset >= pause_at:
                go_on.wait(60)
            yield request

    with client.connect(target, token=token) as channel:
        try:
            ArtifactServiceStub(channel).Write(requests(), timeout=CALLER_TIMEOUT_S)
        except grpc.RpcError as error:
            return error
    return None


def _assert_unavailable(error: grpc.RpcError | None, what: str) -> None:
    assert error is not None, f"{what} succeeded against a hung store"
    assert error.code() == grpc.StatusCode.UNAVAILABLE, f"{what}: {error.code()} {error.details()}"
    assert_clean_message(error.details() or "")


@pytest.mark.timeout(300)
async def test_a_hung_store_gives_unavailable_within_the_deadline_and_nothing_is_lost(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, tmp_path: Path
) -> None:
    seaweed = seaweed_of(store_endpoints)
    target = f"127.0.0.1:{free_port()}"
    serving = serve_process(
        migrated_database_url, store_endpoints, s3_bucket, tmp_path / "serve.log", target,
        MODELREG_S3_DEADLINE_S=str(STORE_DEADLINE_S),
    )  # fmt: skip
    async with serving as (_, channel):
        token = await make_token(migrated_database_url)
        registry, artifacts = Stub(channel), Artifacts(channel)
        version = await new_version(registry)
        file = LocalFile.random(tmp_path / "model.bin", 3 * PART + 99)
        session = await start_upload(artifacts, version, "model.bin", file, declare_size=False)
        small = LocalFile.random(tmp_path / "small.bin", MIB + 1)
        stored = await upload(artifacts, await new_version(registry), "small.bin", small)

        go_on = threading.Event()
        stream = asyncio.create_task(
            asyncio.to_thread(
                _paused_stream, target, token, session.upload_id, file, PART + 2 * MIB, go_on
            )
        )
        try:
            before = await wait_committed(artifacts, session.upload_id, PART)
            with frozen(seaweed):
                go_on.set()  # the stream goes on into a store that no longer answers
                _assert_unavailable(await asyncio.wait_for(stream, 2 * CALLER_TIMEOUT_S), "Write")

                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await artifacts.StartUpload(
                        apb.StartUploadRequest(parent=version, path="other.bin"),
                        timeout=CALLER_TIMEOUT_S,
                    )
                _assert_unavailable(refused.value, "StartUpload")
                with pytest.raises(grpc.aio.AioRpcError) as unreadable:
                    await _download(artifacts, stored.name, CALLER_TIMEOUT_S)
                _assert_unavailable(unreadable.value, "Download")
                # The caller's own deadline, shorter than the store's, is what ends its call:
                # the client's timer or the server's store call cut to that deadline, whichever
                # fires first (a race by design), but never the store's longer deadline.
                started = time.monotonic()
                with pytest.raises(grpc.aio.AioRpcError) as late:
                    await _download(artifacts, stored.name, STORE_DEADLINE_S / 3)
                assert late.value.code() in (
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.UNAVAILABLE,
                )
                assert time.monotonic() - started < STORE_DEADLINE_S
                await wait_for_health(channel, NOT_SERVING)
                # PostgreSQL is up: progress can be asked, and it is all still there.
                while_hung = await query(artifacts, session.upload_id)
                assert while_hung.state == ACTIVE
                assert while_hung.committed_size >= before.committed_size
        finally:
            go_on.set()
            with contextlib.suppress(BaseException):
                await stream

        await wait_for_health(channel, SERVING)
        resumed = ResumeLog()
        artifact = await resume_upload(artifacts, session.upload_id, file, log=resumed)
        assert artifact.sha256 == file.sha256, resumed
        await assert_download_matches(artifacts, artifact.name, file)
        _, data = await download(artifacts, stored.name)
        assert data == small.read(0, small.size)


async def _download(artifacts: Artifacts, name: str, timeout_s: float) -> int:
    received = 0
    async for message in artifacts.Download(apb.DownloadRequest(name=name), timeout=timeout_s):
        received += len(message.data)
    return received
