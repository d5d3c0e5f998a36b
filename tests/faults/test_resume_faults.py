"""A writer that died does not block its successor: after a SIGKILLed server or a PostgreSQL
restart, the client's resume goes through at once (no wait for a long lease to run out) and
ends with the file's exact SHA-256."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import grpc
import pytest
from faults.fault_helpers import SERVING, serve_process
from integration.artifact_helpers import (
    ACTIVE,
    MIB,
    PART,
    Artifacts,
    LocalFile,
    ResumeLog,
    assert_download_matches,
    new_version,
    query,
    resume_upload,
    start_upload,
    wait_committed,
    wait_for_health,
    write_requests,
)
from integration.helpers import Stub
from support.stores import StoreEndpoints

from modelregistry.v1 import artifact_service_pb2 as apb

pytestmark = pytest.mark.faults

# A resume must not wait out the dead writer's claim. Far longer than a healthy resume takes
# on a loaded machine, far shorter than the 15 s lease a dead writer used to hold.
PROMPTLY_S = 6.0


async def _open_stream(
    artifacts: Artifacts, upload_id: str, file: LocalFile, stop_at: int
) -> grpc.aio.StreamUnaryCall[apb.WriteRequest, apb.WriteResponse]:
    """A Write stream that has sent file[0:stop_at] and is left open."""
    call = artifacts.Write()
    for request in write_requests(upload_id, file, 0, stop_at, finish=False):
        await call.write(request)
    return call


@pytest.mark.timeout(240)
async def test_resume_right_after_the_server_is_sigkilled_goes_through_at_once(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, tmp_path: Path
) -> None:
    file = LocalFile.random(tmp_path / "model.bin", 3 * PART + 5)
    log = tmp_path / "serve.log"
    async with serve_process(migrated_database_url, store_endpoints, s3_bucket, log) as (
        server,
        channel,
    ):
        artifacts = Artifacts(channel)
        version = await new_version(Stub(channel))
        session = await start_upload(artifacts, version, "model.bin", file, declare_size=False)
        call = await _open_stream(artifacts, session.upload_id, file, PART + 3 * MIB)
        await wait_committed(artifacts, session.upload_id, PART)
        server.kill()  # mid-stream, claim held: nothing gets to release it
        await server.wait()
        with pytest.raises(grpc.aio.AioRpcError):
            await call

    async with serve_process(migrated_database_url, store_endpoints, s3_bucket, log) as (
        _,
        channel,
    ):
        artifacts = Artifacts(channel)
        assert (await query(artifacts, session.upload_id)).state == ACTIVE
        resumed = ResumeLog()
        artifact = await resume_upload(
            artifacts, session.upload_id, file, log=resumed, within_s=PROMPTLY_S
        )
        assert artifact.sha256 == file.sha256, resumed
        await assert_download_matches(artifacts, artifact.name, file)


@pytest.mark.timeout(240)
async def test_resume_right_after_postgres_restarts_goes_through_at_once(
    store_endpoints: StoreEndpoints, channel: grpc.aio.Channel, registry: Stub, tmp_path: Path
) -> None:
    postgres = store_endpoints.postgres
    if postgres is None:
        pytest.skip("PostgreSQL is external (MODELREG_TEST_DATABASE_URL): cannot restart it")
    artifacts = Artifacts(channel)
    file = LocalFile.random(tmp_path / "model.bin", 3 * PART + 5)
    version = await new_version(registry)
    session = await start_upload(artifacts, version, "model.bin", file, declare_size=False)
    call = await _open_stream(artifacts, session.upload_id, file, PART + 3 * MIB)
    await wait_committed(artifacts, session.upload_id, PART)

    postgres.stop()  # from the main thread: children die with the thread that spawned them
    try:
        call.cancel()  # the client gives up while the server cannot release its claim
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await call
    finally:
        postgres.start()

    await wait_for_health(channel, SERVING)
    resumed = ResumeLog()
    artifact = await resume_upload(
        artifacts, session.upload_id, file, log=resumed, within_s=PROMPTLY_S
    )
    assert artifact.sha256 == file.sha256, resumed
    await assert_download_matches(artifacts, artifact.name, file)
