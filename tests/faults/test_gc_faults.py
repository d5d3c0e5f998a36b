"""Multipart uploads do not leak: one left behind by an AbortUpload during an S3 outage, or by
a start that timed out yet reached S3, is aborted by the next gc once the store is back,
while the multipart upload of a session still open is left alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from integration.artifact_helpers import (
    ABORTED,
    BLOB_PREFIX,
    MIB,
    PART,
    Artifacts,
    LocalFile,
    multipart_uploads,
    new_version,
    resume_upload,
    run_gc,
    start_upload,
    wait_committed,
    write_then_break,
)
from integration.helpers import Stub
from support.stores import StoreEndpoints

from modelregistry.v1 import artifact_service_pb2 as apb

pytestmark = pytest.mark.faults


@pytest.mark.timeout(240)
async def test_gc_aborts_the_multipart_upload_an_abort_during_an_outage_left(
    store_endpoints: StoreEndpoints,
    channel: grpc.aio.Channel,
    registry: Stub,
    migrated_database_url: str,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    seaweed = store_endpoints.seaweed
    if seaweed is None:
        pytest.skip("S3 is external (MODELREG_TEST_S3_ENDPOINT): cannot stop it")
    artifacts = Artifacts(channel)
    version = await new_version(registry)
    file = LocalFile.random(tmp_path / "model.bin", PART + 2 * MIB)
    aborted = await start_upload(artifacts, version, "aborted.bin", file)
    await write_then_break(
        artifacts, aborted.upload_id, file, 0, PART + MIB,
        before_break=lambda: wait_committed(artifacts, aborted.upload_id, PART),
    )  # fmt: skip
    still_open = await start_upload(artifacts, version, "open.bin", file)
    # A start that timed out yet happened: a multipart upload no session ever recorded.
    client = store_endpoints.s3_client()
    stray_key = f"{BLOB_PREFIX}stray"
    await asyncio.to_thread(client._create_multipart_upload, s3_bucket, stray_key, {})

    seaweed.stop()  # from the test's thread: children die with the thread that spawned them
    try:
        answer = await artifacts.AbortUpload(apb.AbortUploadRequest(upload_id=aborted.upload_id))
        assert answer.state == ABORTED  # the session ends; its stored parts cannot go yet
    finally:
        seaweed.start()

    pending = await asyncio.to_thread(multipart_uploads, store_endpoints, s3_bucket)
    assert len(pending) == 3, pending  # the aborted one leaked, so far

    # Within the grace period nothing is touched: the stray start might be a session's.
    run = await run_gc(migrated_database_url, store_endpoints, s3_bucket)
    assert json.loads(run.stdout)["multipart_uploads_aborted"] == 0
    run = await run_gc(
        migrated_database_url, store_endpoints, s3_bucket, "--multipart-grace-seconds", "0"
    )

    assert json.loads(run.stdout)["multipart_uploads_aborted"] == 2, run.stdout
    left = await asyncio.to_thread(multipart_uploads, store_endpoints, s3_bucket)
    assert len(left) == 1, left  # the open session's, alone
    assert stray_key not in left
    # The open session's upload was left alone: it still completes.
    artifact = await resume_upload(artifacts, still_open.upload_id, file)
    assert artifact.sha256 == file.sha256
    assert await asyncio.to_thread(multipart_uploads, store_endpoints, s3_bucket) == []
