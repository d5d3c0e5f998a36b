"""Shards of one checkpoint upload in parallel: concurrent StartUploads into one version all
succeed, with no retry; every shard commits, and the version is READY once the last has."""

from __future__ import annotations

import asyncio
import hashlib

import grpc
import pytest
from integration.artifact_helpers import ACTIVE, Artifacts, list_artifacts, new_version
from integration.helpers import Stub

from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1 import model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb

SHARDS = 16


@pytest.mark.parametrize("declared", ["size", "size_and_sha256"])
async def test_sixteen_concurrent_start_uploads_into_one_version_all_succeed(
    channel: grpc.aio.Channel, registry: Stub, declared: str
) -> None:
    artifacts = Artifacts(channel)
    version = await new_version(registry)
    shards = [f"model-{i:05d}-of-{SHARDS:05d}.safetensors".encode() * 3 for i in range(SHARDS)]
    paths = [f"model-{i:05d}.safetensors" for i in range(SHARDS)]

    def request(path: str, data: bytes) -> apb.StartUploadRequest:
        start = apb.StartUploadRequest(parent=version, path=path, size_bytes=len(data))
        if declared == "size_and_sha256":
            start.sha256 = hashlib.sha256(data).hexdigest()
        return start

    # All at once, each exactly once: no retry may be needed.
    sessions = await asyncio.gather(
        *(artifacts.StartUpload(request(p, d)) for p, d in zip(paths, shards, strict=True))
    )

    assert [s.state for s in sessions] == [ACTIVE] * SHARDS
    assert len({s.upload_id for s in sessions}) == SHARDS
    # Their commits end at once too (a server streams at most 8 uploads: stay under it).
    streams = asyncio.Semaphore(4)

    async def write(upload_id: str, data: bytes) -> None:
        async with streams:
            await artifacts.Write(
                iter([apb.WriteRequest(upload_id=upload_id, offset=0, data=data, finish=True)])
            )

    await asyncio.gather(*(write(s.upload_id, d) for s, d in zip(sessions, shards, strict=True)))
    assert sorted(a.path for a in await list_artifacts(artifacts, version)) == paths
    ready = await registry.GetModelVersion(pb.GetModelVersionRequest(name=version))
    assert ready.status == model_version_pb2.MODEL_VERSION_STATUS_READY
