"""Several files at once (`transfer.upload_files` / `download_files`, `modelreg upload|download
--parallel`) and direct reads from the store through presigned URLs (GetArtifactDownloadUrl,
`modelreg download --direct`), against a real server and a real SeaweedFS.

A stream is broken for real: one file's Write goes through a TCP proxy that is cut, while the
other files go straight to the server. A tampered file is a blob overwritten in the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import grpc
import pytest
import urllib3
from integration.test_cli_artifacts import DroppingProxy, cli, cli_json, new_version, random_file
from support.auth import make_token
from support.server import authenticated_channel
from support.stores import StoreEndpoints

from modelregistry import client, transfer
from modelregistry.config import Endpoints, Settings
from modelregistry.domain.access import Role
from modelregistry.server import serve
from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1 import artifact_service_pb2_grpc, model_version_pb2, registry_service_pb2_grpc
from modelregistry.v1 import registry_service_pb2 as rpb

MiB = 1024 * 1024
READY = model_version_pb2.MODEL_VERSION_STATUS_READY


class ConcurrencyStub:
    """The generated stub, counting Write streams open at once; one upload (by path) may be
    routed through another stub (a proxy that gets cut)."""

    def __init__(self, channel: grpc.Channel, detour: Any = None, detour_path: str = "") -> None:
        self._stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        self._detour = detour
        self._detour_path = detour_path
        self._lock = threading.Lock()
        self._open = 0
        self.most_at_once = 0
        self.upload_ids: dict[str, str] = {}  # path -> upload id
        self.write_starts: dict[str, list[int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)

    def as_stub(self) -> artifact_service_pb2_grpc.ArtifactServiceStub:
        """This counter where transfer takes the generated stub, whose methods it has."""
        return cast(artifact_service_pb2_grpc.ArtifactServiceStub, self)

    def StartUpload(self, request: Any, **kwargs: Any) -> Any:
        session = self._stub.StartUpload(request, **kwargs)
        self.upload_ids[request.path] = session.upload_id
        return session

    def Write(self, requests: Iterator[Any], **kwargs: Any) -> Any:
        first = next(requests)
        path = next(p for p, u in self.upload_ids.items() if u == first.upload_id)
        self.write_starts.setdefault(path, []).append(first.offset)
        stub = self._detour if path == self._detour_path and self._detour else self._stub
        with self._lock:
            self._open += 1
            self.most_at_once = max(self.most_at_once, self._open)
        try:
            return stub.Write(itertools.chain([first], requests), **kwargs)
        finally:
            with self._lock:
                self._open -= 1


async def get_version(channel: grpc.aio.Channel, name: str) -> Any:
    registry = registry_service_pb2_grpc.RegistryServiceStub(channel)
    return await registry.GetModelVersion(rpb.GetModelVersionRequest(name=name))


def shard_files(directory: Path, sizes: list[int]) -> list[tuple[Path, bytes]]:
    count = len(sizes)
    return [
        (path, random_file(path, size))
        for index, size in enumerate(sizes, 1)
        for path in [directory / f"model-{index:05d}-of-{count:05d}.safetensors"]
    ]


async def tamper(database_url: str, stores: StoreEndpoints, bucket: str, sha256: str) -> None:
    """Overwrite the stored bytes of a blob with as many different bytes."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT object_key, size_bytes FROM blobs WHERE sha256 = $1", sha256
        )
        assert row is not None, sha256
        key, size = row
    finally:
        await conn.close()
    evil = b"\x00" * size
    await asyncio.to_thread(stores.s3_client().put_object, bucket, key, io.BytesIO(evil), len(evil))


# --- several files at once ------------------------------------------------------------------


async def test_shards_uploaded_in_parallel_into_one_version_end_ready_with_every_digest(
    registry_target: str, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    version = await new_version(registry_target, "sharded")
    shards = shard_files(tmp_path, [3 * MiB + 1, 2 * MiB, 1, 5 * MiB + 7, 0, 4 * MiB, 700_000])
    items = [transfer.UploadItem(path, f"weights/{path.name}") for path, _ in shards]
    seen: list[tuple[str, str]] = []
    with client.connect(registry_target) as sync_channel:
        stub = ConcurrencyStub(sync_channel)
        uploaded = await asyncio.to_thread(
            transfer.upload_files,
            stub.as_stub(),
            version,
            items,
            parallel=4,
            progress=lambda path, phase, _d, _t: seen.append((path, phase)),
        )
    assert stub.most_at_once > 1, "the files went one after another"
    assert stub.most_at_once <= 4
    assert [a.path for a in uploaded] == [item.path for item in items]  # in the order given
    for artifact, (_, data) in zip(uploaded, shards, strict=True):
        assert artifact.sha256 == hashlib.sha256(data).hexdigest()
        assert artifact.size_bytes == len(data)
    assert {path for path, phase in seen if phase == "done"} == {i.path for i in items}

    found = await get_version(channel, version)
    assert found.status == READY
    manifest = {e.path: e.sha256 for e in found.manifest}
    assert manifest == {
        f"weights/{path.name}": hashlib.sha256(data).hexdigest() for path, data in shards
    }
    assert transfer.manifest_digest(found.manifest) == found.manifest_digest


@pytest.mark.timeout(300)
async def test_one_shard_resumes_after_its_stream_is_cut_while_the_others_complete(
    registry_target: str, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    version = await new_version(registry_target, "cut")
    big = tmp_path / "big" / "model-00001-of-00004.safetensors"
    big_data = random_file(big, 40 * MiB + 3)
    small = shard_files(tmp_path / "small", [2 * MiB, 3 * MiB, MiB + 9])
    items = [transfer.UploadItem(big, big.name)] + [
        transfer.UploadItem(path, path.name) for path, _ in small
    ]
    artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
    proxy = DroppingProxy(registry_target)
    async with proxy.running() as through_proxy:
        proxy.throttle_up = 5e6  # the big shard crawls, so it is cut with parts committed
        with (
            client.connect(registry_target) as sync_channel,
            client.connect(through_proxy) as proxied,
        ):
            stub = ConcurrencyStub(
                sync_channel, artifact_service_pb2_grpc.ArtifactServiceStub(proxied), big.name
            )
            uploading = asyncio.create_task(
                asyncio.to_thread(transfer.upload_files, stub.as_stub(), version, items, parallel=4)
            )
            committed = 0
            listed_paths: set[str] = set()
            small_paths = {path.name for path, _ in small}
            # Until one part of the big shard is stored and the small shards are committed
            # beside it: they do not wait for the big one, which crawls through the proxy.
            while committed < 16 * MiB or listed_paths != small_paths:
                assert not uploading.done(), "the upload finished before the cut"
                await asyncio.sleep(0.05)
                if big.name in stub.upload_ids:
                    request = apb.QueryUploadRequest(upload_id=stub.upload_ids[big.name])
                    committed = (await artifacts.QueryUpload(request)).committed_size
                listed = await artifacts.ListArtifacts(apb.ListArtifactsRequest(parent=version))
                listed_paths = {a.path for a in listed.artifacts}
            proxy.cut()
            proxy.throttle_up = None
            uploaded = await uploading
    assert proxy.drops == 1
    # The small shards did not start again because of the big one's cut.
    assert all(starts == [0] for path, starts in stub.write_starts.items() if path != big.name)
    big_starts = stub.write_starts[big.name]
    assert big_starts[0] == 0
    assert len(big_starts) >= 2
    assert big_starts[-1] >= committed  # resumed from what was stored, never from 0
    expected = {big.name: big_data} | {path.name: data for path, data in small}
    assert {a.path: a.sha256 for a in uploaded} == {
        p: hashlib.sha256(d).hexdigest() for p, d in expected.items()
    }
    found = await get_version(channel, version)
    assert found.status == READY
    assert len(found.manifest) == 4


async def test_cli_uploads_and_downloads_in_parallel_and_one_at_a_time(
    registry_target: str, tmp_path: Path
) -> None:
    t = registry_target
    await new_version(t, "cli-par")
    shards = shard_files(tmp_path / "src", [2 * MiB + 5, MiB, 3 * MiB, 17])
    files = [str(path) for path, _ in shards]
    one_by_one = await cli_json(
        t, "upload", "cli-par/1", "one", *files, "--parallel", "1", "--no-progress"
    )
    at_once = await cli_json(t, "upload", "cli-par/1", "many", *files, "--no-progress")
    for result, prefix in ((one_by_one, "one"), (at_once, "many")):
        assert [a["path"] for a in result["artifacts"]] == [
            f"{prefix}/{path.name}" for path, _ in shards
        ]
        assert [a["sha256"] for a in result["artifacts"]] == [
            hashlib.sha256(data).hexdigest() for _, data in shards
        ]

    for parallel in ("1", "4"):
        out = tmp_path / f"out-{parallel}"
        got = await cli_json(
            t, "download", "cli-par/1", "--out", str(out), "--parallel", parallel, "--no-progress"
        )
        assert got["manifestVerified"] is True
        assert len(got["files"]) == 8
        for path, data in shards:
            assert (out / "one" / path.name).read_bytes() == data
            assert (out / "many" / path.name).read_bytes() == data


@pytest.mark.parametrize("direct", [False, True], ids=["through-the-registry", "direct"])
async def test_a_parallel_download_verifies_each_file_and_keeps_only_the_good_ones(
    registry_target: str,
    channel: grpc.aio.Channel,
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
    tmp_path: Path,
    direct: bool,
) -> None:
    version = await new_version(registry_target, "tampered")
    shards = shard_files(tmp_path / "src", [MiB + 1, 2 * MiB, 3 * MiB + 3])
    with client.connect(registry_target) as sync_channel:
        items = [transfer.UploadItem(path, path.name) for path, _ in shards]
        await asyncio.to_thread(transfer.upload_files, sync_channel, version, items)
    bad_path, bad_data = shards[1]
    await tamper(
        migrated_database_url, store_endpoints, s3_bucket, hashlib.sha256(bad_data).hexdigest()
    )

    out = tmp_path / "out"
    result = await cli(
        registry_target, "download", version, "--out", str(out), "--parallel", "3",
        "--no-progress", *(["--direct"] if direct else []),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    named = [line for line in result.stderr.splitlines() if bad_path.name in line]
    assert named[0].startswith("error: ")
    assert "SHA-256" in named[0]
    # The other files came down verified; the tampered one left nothing behind.
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p, _ in shards if p != bad_path
    )
    for path, data in shards:
        if path != bad_path:
            assert (out / path.name).read_bytes() == data


# --- direct reads ------------------------------------------------------------------------------


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    response = urllib3.request("GET", url, headers=headers, retries=False, timeout=10)
    return response.status, response.data


async def test_a_presigned_url_reads_the_artifact_straight_from_the_store(
    registry_target: str, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    version = await new_version(registry_target, "direct")
    source = tmp_path / "w.bin"
    data = random_file(source, 5 * MiB + 11)
    with client.connect(registry_target) as sync_channel:
        artifact = await asyncio.to_thread(
            transfer.upload_file, sync_channel, version, "w.bin", source
        )
        artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        before = time.time()
        found = await artifacts.GetArtifactDownloadUrl(
            apb.GetArtifactDownloadUrlRequest(name=artifact.name)
        )
        assert (found.size_bytes, found.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        # The default lifetime: 15 minutes.
        assert 14 * 60 < found.expire_time.ToSeconds() - before <= 15 * 60 + 1
        status, body = await asyncio.to_thread(http_get, found.url)
        assert status == 200
        assert body == data
        status, body = await asyncio.to_thread(http_get, found.url, {"Range": "bytes=100-199"})
        assert (status, body) == (206, data[100:200])

        dest = tmp_path / "out" / "w.bin"
        got = await asyncio.to_thread(
            transfer.download_direct,
            sync_channel,
            artifact.name,
            dest,
            expected_sha256=hashlib.sha256(data).hexdigest(),
        )
        assert got.sha256 == artifact.sha256
        assert dest.read_bytes() == data
        wrong = tmp_path / "wrong" / "w.bin"
        with pytest.raises(transfer.ChecksumMismatch):
            await asyncio.to_thread(
                transfer.download_direct,
                sync_channel,
                artifact.name,
                wrong,
                expected_sha256="0" * 64,
            )
        assert list(wrong.parent.iterdir()) == []

    # The CLI: the same files, verified against the manifest.
    out = tmp_path / "cli"
    result = await cli_json(
        registry_target, "download", version, "--direct", "--out", str(out), "--no-progress"
    )
    assert result["manifestVerified"] is True
    assert (out / "w.bin").read_bytes() == data


async def test_a_presigned_url_stops_working_after_its_lifetime(
    registry_target: str, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    version = await new_version(registry_target, "expiring")
    source = tmp_path / "w.bin"
    data = random_file(source, 4096)
    with client.connect(registry_target) as sync_channel:
        artifact = await asyncio.to_thread(
            transfer.upload_file, sync_channel, version, "w.bin", source
        )
    artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
    request = apb.GetArtifactDownloadUrlRequest(name=artifact.name)
    request.lifetime.FromTimedelta(timedelta(seconds=2))
    found = await artifacts.GetArtifactDownloadUrl(request)
    status, body = await asyncio.to_thread(http_get, found.url)
    assert (status, body) == (200, data)
    await asyncio.sleep(max(0.0, found.expire_time.ToSeconds() - time.time()) + 1.5)
    status, body = await asyncio.to_thread(http_get, found.url)
    assert status == 403, status
    assert data not in body

    for seconds in (0.5, -1, 3601):
        too_long = apb.GetArtifactDownloadUrlRequest(name=artifact.name)
        too_long.lifetime.FromTimedelta(timedelta(seconds=seconds))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await artifacts.GetArtifactDownloadUrl(too_long)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "lifetime" in (refused.value.details() or "")


async def test_a_presigned_url_is_refused_to_callers_without_a_live_token(
    registry_target: str, channel: grpc.aio.Channel, migrated_database_url: str, tmp_path: Path
) -> None:
    # Every principal is a viewer everywhere (roles only add to that), so "without the viewer
    # role" is a caller with no token, or one whose token is dead.
    version = await new_version(registry_target, "guarded")
    source = tmp_path / "w.bin"
    random_file(source, 1000)
    with client.connect(registry_target) as sync_channel:
        artifact = await asyncio.to_thread(
            transfer.upload_file, sync_channel, version, "w.bin", source
        )
    request = apb.GetArtifactDownloadUrlRequest(name=artifact.name)
    expired = await make_token(
        migrated_database_url, "short-lived", expires_in=timedelta(milliseconds=1)
    )
    await asyncio.sleep(0.05)
    async with grpc.aio.insecure_channel(registry_target) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await artifact_service_pb2_grpc.ArtifactServiceStub(anonymous).GetArtifactDownloadUrl(
                request
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with authenticated_channel(registry_target, expired) as dead:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await artifact_service_pb2_grpc.ArtifactServiceStub(dead).GetArtifactDownloadUrl(
                request
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "X-Amz" not in str(refused.value)
    viewer = await make_token(migrated_database_url, "a-viewer", Role.VIEWER)
    async with authenticated_channel(registry_target, viewer) as live:
        found = await artifact_service_pb2_grpc.ArtifactServiceStub(live).GetArtifactDownloadUrl(
            request
        )
        assert found.url


@contextlib.asynccontextmanager
async def server_with_public_store(
    database_url: str, stores: StoreEndpoints, bucket: str, public_endpoint: str
) -> AsyncIterator[str]:
    """A server whose presigned URLs name `public_endpoint` (MODELREG_S3_PUBLIC_ENDPOINT)."""
    settings = Settings(
        listen="127.0.0.1:0",
        database_url=database_url,
        s3_endpoint=stores.s3_endpoint,
        s3_access_key=stores.s3_access_key,
        s3_secret_key=stores.s3_secret_key,
        s3_bucket=bucket,
        s3_public_endpoint=public_endpoint,
        migrate_on_start=False,
        shutdown_grace_s=1.0,
        log_level="warning",
        log_format="json",
    )
    ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, on_ready=ready.set_result, stop=stop))
    starting: set[asyncio.Future[None] | asyncio.Future[Endpoints]] = {task, ready}
    done, _ = await asyncio.wait(starting, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield ready.result().grpc
    finally:
        stop.set()
        await asyncio.wait({task}, timeout=20)


@pytest.mark.timeout(180)
async def test_direct_reads_go_to_the_public_endpoint_and_resume_when_the_store_connection_drops(
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
    admin_token: str,
    tmp_path: Path,
) -> None:
    # The store as clients see it: a proxy in front of it, which cuts a read after 5 MiB.
    proxy = DroppingProxy(store_endpoints.s3_endpoint)
    async with (
        proxy.running() as public,
        server_with_public_store(
            migrated_database_url, store_endpoints, s3_bucket, f"http://{public}"
        ) as target,
    ):
        await new_version(target, "public")
        source = tmp_path / "w.bin"
        data = random_file(source, 12 * MiB + 5)
        with client.connect(target) as sync_channel:
            artifact = await asyncio.to_thread(
                transfer.upload_file, sync_channel, "public/1", "w.bin", source
            )
            found = await asyncio.to_thread(
                artifact_service_pb2_grpc.ArtifactServiceStub(sync_channel).GetArtifactDownloadUrl,
                apb.GetArtifactDownloadUrlRequest(name=artifact.name),
            )
            assert found.url.startswith(f"http://{public}/{s3_bucket}/")
            proxy.arm("down", 5 * MiB)
            dest = tmp_path / "out" / "w.bin"
            await asyncio.to_thread(transfer.download_direct, sync_channel, artifact.name, dest)
    assert proxy.drops == 1
    assert dest.read_bytes() == data
    assert os.listdir(dest.parent) == ["w.bin"]
