"""OCI pulls in `make bench` ("oci" in the report): one random blob (--oci-mib, 1 GiB by
default) read four ways in the same run, each ROUNDS times, median MB/s:

- `v2_proxied_mb_s`: GET /v2/<model>/blobs/<digest> from a `modelreg serve` whose HTTP edge
  streams the bytes from the store;
- `v2_redirected_mb_s`: the same GET from a second `modelreg serve` started with
  MODELREG_OCI_BLOB_REDIRECT=true, the client following the 307 to the presigned store URL;
- `grpc_download_mb_s`: ArtifactService.Download of the same file from the bench's server;
- `direct_store_mb_s`: minio's get_object of the same stored object, no registry at all.

The HTTP client is urllib3 (as under minio; 1 MiB reads discarded), the bytes are counted
and their SHA-256 checked once per way. The proxied server's peak RSS during its pulls is
reported against its idle RSS. Targets are reported, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import psutil
import urllib3

from bench import processes
from bench.artifacts import DirectClient, RssSampler, ServiceClient, make_source
from bench.report import mb_per_s, median, ratio
from modelregistry.embedded.process import spawn_child, stop_child
from modelregistry.v1 import registry_service_pb2, registry_service_pb2_grpc

MIB = 1 << 20
ROUNDS = 3
MODEL = "bench-oci"
PATH = "weights.bin"
_READY_TIMEOUT_S = 180.0  # a loaded machine takes a while
_STOP_TIMEOUT_S = 15.0


async def run(
    channel: grpc.aio.Channel,
    token: str,
    workdir: Path,
    database_url: str,
    s3: processes.S3Target,
    size_mib: int,
) -> dict[str, Any]:
    size = size_mib * MIB
    _say(f"oci: writing a {size_mib} MiB random file ...")
    source = await asyncio.to_thread(make_source, workdir / "oci.bin", size)
    registry = registry_service_pb2_grpc.RegistryServiceStub(channel)
    await registry.CreateModel(registry_service_pb2.CreateModelRequest(model_id=MODEL))
    version = await registry.CreateModelVersion(
        registry_service_pb2.CreateModelVersionRequest(parent=f"models/{MODEL}")
    )
    service = ServiceClient(channel, version.name, size)
    _say("oci: uploading it through ArtifactService ...")
    await service.upload(source.path, 0, size, PATH)
    digest = f"sha256:{source.sha256}"
    object_key = await _object_key(database_url, source.sha256)
    direct = DirectClient(s3)

    with contextlib.ExitStack() as stack:
        proxied_url, proxied_pid = _start_http_server(
            stack, workdir, "oci-proxied", database_url, s3, {}
        )
        redirected_url, _ = _start_http_server(
            stack, workdir, "oci-redirected", database_url, s3,
            {"MODELREG_OCI_BLOB_REDIRECT": "true"},
        )  # fmt: skip
        await asyncio.gather(_wait_ready(proxied_url), _wait_ready(redirected_url))
        proxied_process = psutil.Process(proxied_pid)
        blob = f"/v2/{MODEL}/blobs/{digest}"
        rounds: dict[str, list[float]] = {k: [] for k in _WAYS}
        checked: set[str] = set()
        idle_rss = processes.rss_mib(proxied_process)
        peak_bytes = 0
        for _ in range(ROUNDS):
            for way in _WAYS:
                check = way not in checked
                started = time.perf_counter()
                if way == "v2_proxied_mb_s":
                    with RssSampler(proxied_process, 0.05) as sampler:
                        received = await _http_get(proxied_url + blob, token, check)
                    peak_bytes = max(peak_bytes, sampler.peak_bytes)
                elif way == "v2_redirected_mb_s":
                    received = await _http_get(redirected_url + blob, token, check)
                elif way == "grpc_download_mb_s":
                    received = (await service.download(PATH), "")
                else:
                    received = (await asyncio.to_thread(direct.get, object_key), "")
                elapsed = time.perf_counter() - started
                count, sha256 = received
                if count != size or (check and sha256 and sha256 != source.sha256):
                    raise RuntimeError(f"oci: {way} received {count} bytes (sha256 {sha256})")
                checked.add(way)
                rounds[way].append(mb_per_s(size, elapsed))
            _say(f"oci: round {json_line(rounds)}")
    report: dict[str, Any] = {way: median(values) for way, values in rounds.items()}
    report["proxied_vs_direct"] = ratio(report["v2_proxied_mb_s"], report["direct_store_mb_s"])
    report["redirected_vs_direct"] = ratio(
        report["v2_redirected_mb_s"], report["direct_store_mb_s"]
    )
    report["proxied_server_rss_idle_mib"] = idle_rss
    report["proxied_server_rss_peak_mib"] = round(max(peak_bytes / MIB, idle_rss), 1)
    report["rounds"] = rounds
    report["setup"] = {
        "blob_mib": size_mib,
        "client": f"urllib3 {metadata.version('urllib3')} (minio's HTTP client), 1 MiB reads "
        "discarded, one thread; redirects followed (Authorization dropped on the store's "
        "host); gRPC Download on the bench's channel; minio get_object for the direct read",
        "servers": "two extra `modelreg serve` processes on the same database and bucket, "
        "one with MODELREG_OCI_BLOB_REDIRECT=true",
    }
    await asyncio.to_thread(source.path.unlink)
    return report


_POOL = urllib3.PoolManager(timeout=urllib3.Timeout(connect=10.0, read=60.0))
_WAYS = ("v2_proxied_mb_s", "v2_redirected_mb_s", "grpc_download_mb_s", "direct_store_mb_s")


def json_line(rounds: dict[str, list[float]]) -> str:
    return ", ".join(f"{k} {v[-1]}" for k, v in rounds.items() if v)


async def _http_get(url: str, token: str, hash_it: bool) -> tuple[int, str]:
    """GET `url` following redirects; (bytes received, their sha256 if asked)."""
    return await asyncio.to_thread(_get_blocking, url, token, hash_it)


def _get_blocking(url: str, token: str, hash_it: bool) -> tuple[int, str]:
    # urllib3, the client under minio's direct read: the same client code on both sides of
    # the comparison. It drops Authorization when a redirect leaves the registry's host.
    digest = hashlib.sha256() if hash_it else None
    received = 0
    response = _POOL.request(
        "GET", url, headers=urllib3.make_headers(basic_auth=f"bench:{token}"),
        preload_content=False, redirect=True,
    )  # fmt: skip
    try:
        if response.status != 200:
            raise RuntimeError(f"oci: GET {url} answered {response.status}")
        for chunk in response.stream(MIB):
            received += len(chunk)
            if digest is not None:
                digest.update(chunk)
    finally:
        response.release_conn()
    return received, digest.hexdigest() if digest is not None else ""


async def _object_key(database_url: str, sha256: str) -> str:
    """Where the server stored the blob, for the direct read (a bench may look)."""
    conn = await asyncpg.connect(database_url)
    try:
        key: str = await conn.fetchval("SELECT object_key FROM blobs WHERE sha256 = $1", sha256)
    finally:
        await conn.close()
    return key


def _start_http_server(
    stack: contextlib.ExitStack, workdir: Path, name: str, database_url: str,
    s3: processes.S3Target, extra: dict[str, str],
) -> tuple[str, int]:  # fmt: skip
    """A `modelreg serve` with an HTTP edge: (its URL, its pid)."""
    grpc_port = processes.free_port()
    http_port = processes.free_port(exclude={grpc_port})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env.update(
        MODELREG_LISTEN=f"127.0.0.1:{grpc_port}",
        MODELREG_HTTP_LISTEN=f"127.0.0.1:{http_port}",
        MODELREG_DATABASE_URL=database_url,
        MODELREG_MIGRATE_ON_START="false",
        MODELREG_LOG_LEVEL="warning",
        MODELREG_LOG_FORMAT="json",
        MODELREG_SHUTDOWN_GRACE_S="2",
        MODELREG_S3_ENDPOINT=s3.endpoint,
        MODELREG_S3_ACCESS_KEY=s3.credentials.access_key,
        MODELREG_S3_SECRET_KEY=s3.credentials.secret_key,
        MODELREG_S3_BUCKET=s3.bucket,
        **extra,
    )
    process = spawn_child(
        processes.server_argv(), workdir / f"{name}.log", death_signal=signal.SIGTERM, env=env
    )
    stack.callback(stop_child, process, signal.SIGTERM, _STOP_TIMEOUT_S)
    return f"http://127.0.0.1:{http_port}", process.pid


async def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/readyz", timeout=2.0)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"oci: {url} was not ready after {_READY_TIMEOUT_S:.0f} s")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
