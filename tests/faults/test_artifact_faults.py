"""Uploads survive their server and their object store: a SIGKILLed `modelreg serve` and a
stopped S3 lose no committed byte, show no half-written file, and the same session resumes
to the identical file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from faults.fault_helpers import NOT_SERVING, SERVING, serve_process
from integration.artifact_helpers import (
    ACTIVE,
    MIB,
    PART,
    Artifacts,
    LocalFile,
    ResumeLog,
    assert_download_matches,
    download,
    list_artifacts,
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
from support.stores import StoreEndpoints

from modelregistry import client
from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1 import model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb
from modelregistry.v1.artifact_service_pb2_grpc import ArtifactServiceStub

pytestmark = pytest.mark.faults


async def _stream_until(
    artifacts: Artifacts, upload_id: str, file: LocalFile, stop_at: int
) -> grpc.aio.StreamUnaryCall[apb.WriteRequest, apb.WriteResponse]:
    """A Write stream that has sent file[0:stop_at] and is left open."""
    call = artifacts.Write()
    for request in write_requests(upload_id, file, 0, stop_at, finish=False):
        await call.write(request)
    return call


def _paused_stream(
    target: str, upload_id: str, file: LocalFile, pause_at: int, go_on: threading.Event
) -> grpc.RpcError | None:
    """A whole-file Write stream with `finish` that stops sending at `pause_at` until `go_on`;
    returns its error. The sync client: grpc.aio can report INTERNAL instead of the server's
    status when the server ends a stream it is still writing to (grpc/grpc#36066)."""

    def requests() -> Iterator[apb.WriteRequest]:
        for request in write_requests(upload_id, file):
            if request.offset >= pause_at:
                go_on.wait(60)
            yield request

    with client.connect(target) as channel:  # the token comes from $MODELREG_TOKEN
        try:
            ArtifactServiceStub(channel).Write(requests(), timeout=120)
        except grpc.RpcError as error:
            return error
    return None


@pytest.mark.timeout(240)
async def test_an_upload_resumes_on_a_new_server_after_the_old_one_is_sigkilled(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, tmp_path: Path
) -> None:
    file = LocalFile.random(tmp_path / "model.bin", 6 * PART + 333)
    seed = int.from_bytes(os.urandom(4), "big")
    killed_at = random.Random(seed).randrange(2 * PART + 1, file.size - MIB)
    log = tmp_path / "serve.log"

    serving = serve_process(migrated_database_url, store_endpoints, s3_bucket, log)
    async with serving as (server, chan):
        registry, artifacts = Stub(chan), Artifacts(chan)
        version = await new_version(registry)
        # No declared size: standard 16 MiB parts.
        session = await start_upload(artifacts, version, "model.bin", file, declare_size=False)
        call = await _stream_until(artifacts, session.upload_id, file, killed_at)
        before = await wait_committed(artifacts, session.upload_id, PART)
        server.kill()  # SIGKILL mid-upload: nothing gets to clean up
        await server.wait()
        with pytest.raises(grpc.aio.AioRpcError):  # whatever code: the server is gone
            await call

    async with serve_process(migrated_database_url, store_endpoints, s3_bucket, log) as (_, chan):
        registry, artifacts = Stub(chan), Artifacts(chan)
        context = f"seed={seed} killed_at={killed_at} before={before.committed_size}"
        after = await query(artifacts, session.upload_id)
        assert after.state == ACTIVE, context
        assert before.committed_size <= after.committed_size <= killed_at, context
        assert after.committed_size % PART == 0, context
        assert await list_artifacts(artifacts, version) == [], context
        pending = await registry.GetModelVersion(pb.GetModelVersionRequest(name=version))
        assert pending.status == model_version_pb2.MODEL_VERSION_STATUS_PENDING

        resumed = ResumeLog()
        artifact = await resume_upload(artifacts, session.upload_id, file, log=resumed)

        assert resumed.resumed_at[0] >= after.committed_size, context
        assert artifact.sha256 == file.sha256, context
        await assert_download_matches(artifacts, artifact.name, file)
        ready = await registry.GetModelVersion(pb.GetModelVersionRequest(name=version))
        assert ready.status == model_version_pb2.MODEL_VERSION_STATUS_READY
        assert [(e.path, e.sha256) for e in ready.manifest] == [("model.bin", file.sha256)]


@pytest.mark.timeout(240)
async def test_s3_stopped_mid_upload_is_unavailable_and_the_session_resumes_after(
    store_endpoints: StoreEndpoints,
    registry_target: str,
    channel: grpc.aio.Channel,
    registry: Stub,
    tmp_path: Path,
) -> None:
    seaweed = store_endpoints.seaweed
    if seaweed is None:
        pytest.skip("S3 is external (MODELREG_TEST_S3_ENDPOINT): cannot stop it")
    artifacts = Artifacts(channel)
    file = LocalFile.random(tmp_path / "model.bin", 4 * PART + 99)
    version = await new_version(registry)
    session = await start_upload(artifacts, version, "model.bin", file, declare_size=False)
    small = LocalFile.random(tmp_path / "small.bin", MIB + 1)
    stored = await upload(artifacts, await new_version(registry), "small.bin", small)
    await wait_for_health(channel, SERVING)

    go_on = threading.Event()
    stream = asyncio.create_task(
        asyncio.to_thread(
            _paused_stream, registry_target, session.upload_id, file, PART + 2 * MIB, go_on
        )
    )
    try:
        before = await wait_committed(artifacts, session.upload_id, PART)
        seaweed.stop()  # from the test's thread: children die with the thread that spawned them
        try:
            go_on.set()
            error = await asyncio.wait_for(stream, 100)
            assert error is not None, "the upload succeeded with S3 stopped"
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            assert_clean_message(error.details() or "")

            await wait_for_health(channel, NOT_SERVING)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await start_upload(artifacts, version, "other.bin", file)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.aio.AioRpcError) as unreadable:
                await download(artifacts, stored.name)
            assert unreadable.value.code() == grpc.StatusCode.UNAVAILABLE
            # PostgreSQL is up: what is visible can be asked, and nothing half-written is.
            assert await list_artifacts(artifacts, version) == []
            while_down = await query(artifacts, session.upload_id)
            assert while_down.state == ACTIVE
            assert before.committed_size <= while_down.committed_size < file.size
        finally:
            seaweed.start()
    finally:
        go_on.set()
        with contextlib.suppress(BaseException):
            await stream

    await wait_for_health(channel, SERVING)
    assert await list_artifacts(artifacts, version) == []
    resumed = ResumeLog()
    artifact = await resume_upload(artifacts, session.upload_id, file, log=resumed)
    assert resumed.resumed_at[0] >= before.committed_size
    assert artifact.sha256 == file.sha256
    await assert_download_matches(artifacts, artifact.name, file)
    await assert_download_matches(artifacts, stored.name, small)
