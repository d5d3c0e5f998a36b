"""Artifact transfers: ArtifactService against the same S3 server used directly with minio.

Measured in one run, on one random file written once into the temporary directory:

* ROUNDS rounds of: upload of the whole file through the service and a minio `fput_object`
  of it (16 MiB parts), then a download of it through the service and a minio
  `get_object().stream(1 MiB)`; the order of service and direct alternates between rounds.
  Both downloads discard what they receive (they count the bytes): the sinks are the same.
  Once with the store reached over http (a server configured so, and minio over http), then
  once over https (a second server, configured with the store's CA, and minio over https):
  one SeaweedFS serves both. The server's CPU per MB is read for each path.
* The four quarters of the file uploaded one after another, then all four at once (the
  parallel upload ratio), with the server's RSS sampled every RSS_SAMPLE_S during the
  concurrent ones and its idle RSS read just before.
* An upload of half the file, stored once beforehand, with its SHA-256 declared: the time from
  StartUpload until the artifact is COMMITTED (the digest is computed beforehand, untimed).
* A download of the whole file in DOWNLOAD_STREAMS ranged streams at once (aggregate).
* The server's RSS before any transfer and IDLE_AFTER_S after the last one.

The service client is this process (apart from the server), on a grpc.aio channel with
`modelregistry.server.GRPC_OPTIONS`, sending 1 MiB chunks read with `readinto`. The throughput
uploads declare the size but no digest (no dedup at StartUpload) and each goes to a new path;
their content is the same, so from the second one on the server keeps one copy at commit and
drops the new object: the bytes still travel and are stored, only the copy is deleted.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import grpc
import psutil
import urllib3
from minio import Minio

from bench import processes
from bench.report import (
    ARTIFACT_TARGETS,
    TRANSFER_TARGETS,
    check_targets,
    cpu_ms_per_mb,
    mb_per_s,
    median,
    ratio,
)
from modelregistry.v1 import (
    artifact_pb2,
    artifact_service_pb2,
    artifact_service_pb2_grpc,
    model_pb2,
    model_version_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
)

MIB = 1 << 20
CHUNK_BYTES = MIB
DIRECT_PART_BYTES = 16 * MIB
ROUNDS = 3
CONCURRENT_UPLOADS = 4
DOWNLOAD_STREAMS = 4
RSS_SAMPLE_S = 0.05
IDLE_BEFORE_RSS_S = 2.0
# Issue 14: idle RSS is back within IDLE_RSS_SLACK_MIB of its pre-transfer level this long
# after the last transfer.
IDLE_AFTER_S = 10.0
IDLE_RSS_SLACK_MIB = 40.0
START_ATTEMPTS = 5
MODEL = "bench-artifacts"
DIRECT_PREFIX = "bench-direct/"
_COMMITTED = artifact_pb2.UploadSession.STATE_COMMITTED
T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """The random file and the digests of the pieces the run uploads."""

    path: Path
    size: int
    sha256: str
    half_sha256: str  # of bytes [0, size / 2): the dedup upload
    quarter_sha256: tuple[str, ...]  # of each quarter: the concurrent uploads

    @property
    def quarter(self) -> int:
        return self.size // CONCURRENT_UPLOADS


@dataclass(frozen=True)
class Meters:
    """The processes whose CPU a transfer reads: server, SeaweedFS, this client."""

    server: psutil.Process
    seaweed: psutil.Process
    client: psutil.Process

    def read(self) -> tuple[float, float, float]:
        return (
            processes.cpu_seconds(self.server),
            processes.tree_cpu_seconds(self.seaweed),
            processes.cpu_seconds(self.client),
        )


@dataclass
class Busy:
    """CPU seconds and wall seconds summed over the transfers of one kind."""

    wall_s: float = 0.0
    server_s: float = 0.0
    seaweed_s: float = 0.0
    client_s: float = 0.0
    bytes: int = 0

    def cores(self) -> dict[str, float]:
        """Mean cores each process kept busy during these transfers."""
        if self.wall_s <= 0:
            return {}
        return {
            "server": round(self.server_s / self.wall_s, 2),
            "seaweed": round(self.seaweed_s / self.wall_s, 2),
            "client": round(self.client_s / self.wall_s, 2),
        }


class Timed:
    """Runs transfers, timing each and adding the CPU it cost to its kind."""

    def __init__(self, meters: Meters, busy: dict[str, Busy] | None = None) -> None:
        self.meters = meters
        self.busy: dict[str, Busy] = {} if busy is None else busy

    def reading(self, server: psutil.Process) -> Timed:
        """The same tally, reading the CPU of another server (the https one)."""
        return Timed(replace(self.meters, server=server), self.busy)

    def server_cpu_ms_per_mb(self, kind: str) -> float | None:
        busy = self.busy.get(kind)
        return cpu_ms_per_mb(busy.server_s, busy.bytes) if busy else None

    async def run(
        self, kind: str, work: Callable[[], Awaitable[T]], size: int = 0
    ) -> tuple[float, T]:
        """Time `work`, a transfer of `size` bytes (0: not counted per MB)."""
        before = self.meters.read()
        started = time.perf_counter()
        result = await work()
        elapsed = time.perf_counter() - started
        after = self.meters.read()
        busy = self.busy.setdefault(kind, Busy())
        busy.wall_s += elapsed
        busy.server_s += after[0] - before[0]
        busy.seaweed_s += after[1] - before[1]
        busy.client_s += after[2] - before[2]
        busy.bytes += size
        return elapsed, result


def make_source(path: Path, size: int) -> Source:
    """Write `size` random bytes (os.urandom, 1 MiB at a time), hash them, flush to disk.

    fsync, so that writing back the page cache does not compete with the first transfers.
    """
    full, half = hashlib.sha256(), hashlib.sha256()
    quarters = [hashlib.sha256() for _ in range(CONCURRENT_UPLOADS)]
    quarter = size // CONCURRENT_UPLOADS
    written = 0
    with path.open("wb") as out:
        while written < size:
            data = os.urandom(min(CHUNK_BYTES, size - written))
            out.write(data)
            full.update(data)
            if written < size // 2:
                half.update(data)  # size is a multiple of 4 MiB: chunks never straddle
            quarters[written // quarter].update(data)
            written += len(data)
        out.flush()
        os.fsync(out.fileno())
    return Source(
        path=path,
        size=size,
        sha256=full.hexdigest(),
        half_sha256=half.hexdigest(),
        quarter_sha256=tuple(q.hexdigest() for q in quarters),
    )


class _SliceReader:
    """`length` bytes of a file from `offset`, in 1 MiB chunks read with readinto."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._file = path.open("rb", buffering=0)
        self._file.seek(offset)
        self._left = length
        self._buffer = bytearray(CHUNK_BYTES)
        self._view = memoryview(self._buffer)

    def next_chunk(self) -> bytes:
        """The next chunk as bytes (protobuf takes nothing else: one copy of the buffer)."""
        want = min(CHUNK_BYTES, self._left)
        got = self._file.readinto(self._view[:want])
        if got != want:
            raise RuntimeError(f"short read of the source file: {got} of {want} bytes")
        self._left -= got
        return bytes(self._view[:got])

    def close(self) -> None:
        self._view.release()
        self._file.close()


@dataclass(frozen=True)
class Uploaded:
    artifact: artifact_pb2.Artifact
    deduplicated: bool  # StartUpload answered COMMITTED: no byte travelled


class ServiceClient:
    """Uploads and downloads through ArtifactService on one channel."""

    def __init__(self, channel: grpc.aio.Channel, parent: str, size: int) -> None:
        self.stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        self.parent = parent
        # Generous: a stalled transfer should fail the run, a slow machine should not.
        self.timeout_s = 120.0 + size / 10e6
        self.start_retries = 0  # concurrent StartUploads must not need any: reported

    def artifact_name(self, path: str) -> str:
        return f"{self.parent}/artifacts/{path}"

    async def upload(
        self, source: Path, offset: int, length: int, path: str, sha256: str = ""
    ) -> Uploaded:
        """StartUpload, then one Write stream with `finish` on its last message."""
        session = await self._start(
            artifact_service_pb2.StartUploadRequest(
                parent=self.parent, path=path, size_bytes=length, sha256=sha256
            )
        )
        if session.state == _COMMITTED:
            return Uploaded(session.result, deduplicated=True)
        reader = _SliceReader(source, offset, length)
        call = self.stub.Write(timeout=self.timeout_s)
        try:
            sent = 0
            while sent < length:
                data = reader.next_chunk()
                await call.write(
                    artifact_service_pb2.WriteRequest(
                        upload_id=session.upload_id,
                        offset=sent,
                        data=data,
                        finish=sent + len(data) == length,
                    )
                )
                sent += len(data)
            await call.done_writing()
            response = await call
        finally:
            reader.close()
        if response.committed_size != length or not response.HasField("artifact"):
            raise RuntimeError(f"upload of {path} ended at {response.committed_size} bytes")
        return Uploaded(response.artifact, deduplicated=False)

    async def _start(
        self, request: artifact_service_pb2.StartUploadRequest
    ) -> artifact_pb2.UploadSession:
        """StartUpload, retried on ABORTED as its error asks (concurrent starts conflict)."""
        for attempt in range(START_ATTEMPTS):
            try:
                return await self.stub.StartUpload(request, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED or attempt == START_ATTEMPTS - 1:
                    raise
                self.start_retries += 1
                _say(f"artifacts: StartUpload {request.path}: ABORTED ({error.details()}); retry")
                await asyncio.sleep(0.05 * 2**attempt * (1 + random.random()))
        raise AssertionError("unreachable")

    async def download(self, path: str, offset: int = 0, length: int = 0) -> int:
        """Read a range and discard it; return how many data bytes arrived."""
        call = self.stub.Download(
            artifact_service_pb2.DownloadRequest(
                name=self.artifact_name(path), offset=offset, length=length
            ),
            timeout=self.timeout_s,
        )
        received = 0
        first = True
        async for response in call:
            if first:
                if not response.HasField("artifact"):
                    raise RuntimeError("the first Download message carried no artifact")
                first = False
                continue
            received += len(response.data)  # `data` read once: each access copies
        return received


class DirectClient:
    """minio straight to the same S3 server and bucket, as a client without the registry."""

    def __init__(self, s3: processes.S3Target) -> None:
        self.bucket = s3.bucket
        self.client = Minio(
            s3.endpoint,
            access_key=s3.credentials.access_key,
            secret_key=s3.credentials.secret_key,
            secure=s3.secure,
            # As minio's own pool, but trusting the bench's throwaway CA over https.
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=5.0, read=120.0),
                maxsize=10,
                cert_reqs="CERT_REQUIRED",
                ca_certs=str(s3.ca_file) if s3.ca_file else None,
                retries=urllib3.Retry(total=3, backoff_factor=0.2),
            ),
        )

    def put(self, source: Path, key: str) -> None:
        # minio's default: parts of a file go up on 3 threads, as the server's 3 store workers.
        self.client.fput_object(self.bucket, key, str(source), part_size=DIRECT_PART_BYTES)

    def get(self, key: str) -> int:
        """Read the object and discard it; return how many bytes arrived."""
        response = self.client.get_object(self.bucket, key)
        received = 0
        try:
            for chunk in response.stream(CHUNK_BYTES):
                received += len(chunk)
        finally:
            response.close()
            response.release_conn()
        return received


class RssSampler:
    """The peak RSS of a process, sampled on a thread (not starved by a busy event loop)."""

    def __init__(self, process: psutil.Process, interval_s: float) -> None:
        self._process = process
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self.peak_bytes = 0
        self.samples = 0

    def __enter__(self) -> RssSampler:
        self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._read()

    def _read(self) -> None:
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
        self.samples += 1


@dataclass(frozen=True)
class Route:
    """One way to the store: a server configured for it, and the same store for minio."""

    protocol: str  # "http" or "https", between the server (or minio) and the store
    channel: grpc.aio.Channel  # to a `modelreg serve` whose S3 settings use that protocol
    server: psutil.Process
    s3: processes.S3Target


async def run(
    http: Route,
    https: Route,
    workdir: Path,
    meters: Meters,
    size_mib: int,
) -> dict[str, Any]:
    """`meters.server` is the http route's server: RSS and the single-protocol figures."""
    size = size_mib * MIB
    _say(f"artifacts: writing a {size_mib} MiB random file into {workdir} ...")
    source = await asyncio.to_thread(make_source, workdir / "artifact.bin", size)
    timed = Timed(meters)
    warnings: list[str] = []
    report: dict[str, Any] = {}
    rss_before = processes.rss_mib(meters.server)

    service = await _service_client(http.channel, size)
    rounds = await _throughput_rounds(service, DirectClient(http.s3), timed, source, "")
    report.update(_round_medians(rounds, ""))
    https_service = await _service_client(https.channel, size)
    https_rounds = await _throughput_rounds(
        https_service, DirectClient(https.s3), timed.reading(https.server), source, "_https"
    )
    report.update(_round_medians(https_rounds, "_https"))

    parallel = []
    for _ in range(ROUNDS):
        elapsed, received = await timed.run(
            "parallel_download", lambda: _parallel_download(service, source.size), source.size
        )
        _check_size("parallel download", received, source.size)
        parallel.append(mb_per_s(source.size, elapsed))
    report["parallel_download_mb_s"] = median(parallel)
    _say(f"artifacts: parallel download {parallel} MB/s")

    report.update(await _quarters(service, timed, source, meters.server))
    report["dedup_upload_s"] = await _dedup(service, timed, source, warnings)
    report.update(await _idle_after(meters.server, rss_before))
    report["server_cpu_ms_per_mb"] = {
        kind: timed.server_cpu_ms_per_mb(kind)
        for kind in ("upload", "download", "upload_https", "download_https")
    }
    # Only kinds long enough for CPU times (10 ms ticks) to mean something.
    report["cores_busy"] = {
        kind: busy.cores() for kind, busy in timed.busy.items() if busy.wall_s >= 0.5
    }
    report["rounds"] = rounds
    report["rounds_https"] = https_rounds
    report["targets"] = check_targets(report, ARTIFACT_TARGETS + TRANSFER_TARGETS)
    if warnings:
        report["warnings"] = warnings
    await asyncio.to_thread(source.path.unlink)
    return report


async def _service_client(channel: grpc.aio.Channel, size: int) -> ServiceClient:
    parent = await _version(registry_service_pb2_grpc.RegistryServiceStub(channel))
    return ServiceClient(channel, parent, size)


def _round_medians(rounds: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for key in ("upload_mb_s", "direct_put_mb_s", "download_mb_s", "direct_get_mb_s"):
        report[key + suffix] = median([r[key] for r in rounds])
    report["upload_ratio" + suffix] = ratio(
        report["upload_mb_s" + suffix], report["direct_put_mb_s" + suffix]
    )
    report["download_ratio" + suffix] = ratio(
        report["download_mb_s" + suffix], report["direct_get_mb_s" + suffix]
    )
    return report


async def _quarters(
    service: ServiceClient, timed: Timed, source: Source, server: psutil.Process
) -> dict[str, Any]:
    """The quarters one after another, then at once (with the server's RSS sampled)."""
    quarter = source.quarter
    started = time.perf_counter()
    for index in range(CONCURRENT_UPLOADS):
        _, uploaded = await timed.run(
            "sequential_upload",
            functools.partial(
                service.upload, source.path, index * quarter, quarter, f"sequential/{index + 1}.bin"
            ),
            quarter,
        )
        _check_artifact(uploaded, quarter, source.quarter_sha256[index])
    sequential_mb_s = mb_per_s(source.size, time.perf_counter() - started)

    await asyncio.sleep(IDLE_BEFORE_RSS_S)
    idle = processes.rss_mib(server)
    with RssSampler(server, RSS_SAMPLE_S) as sampler:
        elapsed, uploads = await timed.run(
            "concurrent_upload", lambda: _concurrent_uploads(service, source), source.size
        )
    peak = round(max(sampler.peak_bytes / MIB, idle), 1)
    for index, uploaded in enumerate(uploads):
        _check_artifact(uploaded, quarter, source.quarter_sha256[index])
    report: dict[str, Any] = {
        "sequential_upload_mb_s": sequential_mb_s,
        "concurrent_upload_mb_s": mb_per_s(source.size, elapsed),
    }
    report["concurrent_quarters_upload_ratio"] = ratio(
        report["concurrent_upload_mb_s"], sequential_mb_s
    )
    report["server_rss_idle_mib"] = idle
    report["server_rss_peak_mib"] = peak
    report["server_rss_growth_mib"] = round(peak - idle, 1)
    report["server_rss_samples"] = sampler.samples
    report["concurrent_start_upload_retries"] = service.start_retries
    _say(
        f"artifacts: {CONCURRENT_UPLOADS} quarters one by one {sequential_mb_s} MB/s, at once "
        f"{report['concurrent_upload_mb_s']} MB/s, server RSS {idle} -> peak {peak} MiB "
        f"({sampler.samples} samples)"
    )
    return report


async def _idle_after(server: psutil.Process, before_mib: float) -> dict[str, Any]:
    """The server's RSS IDLE_AFTER_S after the last transfer, and when it came back."""
    quiet_since = time.monotonic()
    back_after_s: float | None = None
    while (waited := time.monotonic() - quiet_since) < IDLE_AFTER_S:
        if back_after_s is None and processes.rss_mib(server) <= before_mib + IDLE_RSS_SLACK_MIB:
            back_after_s = round(waited, 1)
        await asyncio.sleep(0.25)
    after = processes.rss_mib(server)
    _say(f"artifacts: server RSS {before_mib} MiB before transfers, {after} MiB idle after")
    return {
        "server_rss_before_transfers_mib": before_mib,
        "server_rss_idle_after_mib": after,
        "server_rss_idle_after_growth_mib": round(after - before_mib, 1),
        "server_rss_back_within_slack_after_s": back_after_s,
    }


async def _version(registry: registry_service_pb2_grpc.RegistryServiceAsyncStub) -> str:
    """A new model version in DEVELOPMENT to upload into (one per route)."""
    try:
        await registry.CreateModel(
            registry_service_pb2.CreateModelRequest(
                model_id=MODEL,
                model=model_pb2.Model(description="artifact benchmark", owner="bench"),
            ),
            timeout=30.0,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    version = await registry.CreateModelVersion(
        registry_service_pb2.CreateModelVersionRequest(
            parent=f"models/{MODEL}",
            model_version=model_version_pb2.ModelVersion(description="artifact benchmark"),
        ),
        timeout=30.0,
    )
    return str(version.name)


async def _throughput_rounds(
    service: ServiceClient, direct: DirectClient, timed: Timed, source: Source, suffix: str
) -> list[dict[str, Any]]:
    """`suffix` names the kinds of transfer ("_https": the store over https)."""
    rounds: list[dict[str, Any]] = []
    for number in range(1, ROUNDS + 1):
        row = await _round(service, direct, timed, source, number, suffix)
        rounds.append(row)
        _say(f"artifacts: round {number}{suffix}: {row}")
    return rounds


async def _round(
    service: ServiceClient,
    direct: DirectClient,
    timed: Timed,
    source: Source,
    number: int,
    suffix: str,
) -> dict[str, Any]:
    """Upload, then download, through the service and directly; odd rounds service first."""
    service_first = number % 2 == 1
    path = f"throughput/round-{number}.bin"
    key = f"{DIRECT_PREFIX}round-{number}{suffix}.bin"
    row: dict[str, Any] = {"order": "service first" if service_first else "direct first"}
    size = source.size

    async def service_up() -> None:
        elapsed, uploaded = await timed.run(
            "upload" + suffix, lambda: service.upload(source.path, 0, size, path), size
        )
        _check_artifact(uploaded, source.size, source.sha256)
        row["upload_mb_s"] = mb_per_s(source.size, elapsed)

    async def direct_put() -> None:
        elapsed, _ = await timed.run(
            "direct_put" + suffix, lambda: asyncio.to_thread(direct.put, source.path, key), size
        )
        row["direct_put_mb_s"] = mb_per_s(source.size, elapsed)

    async def service_down() -> None:
        elapsed, received = await timed.run(
            "download" + suffix, lambda: service.download(path), size
        )
        _check_size("service download", received, source.size)
        row["download_mb_s"] = mb_per_s(source.size, elapsed)

    async def direct_get() -> None:
        elapsed, received = await timed.run(
            "direct_get" + suffix, lambda: asyncio.to_thread(direct.get, key), size
        )
        _check_size("direct download", received, source.size)
        row["direct_get_mb_s"] = mb_per_s(source.size, elapsed)

    ups = (service_up, direct_put) if service_first else (direct_put, service_up)
    downs = (service_down, direct_get) if service_first else (direct_get, service_down)
    for step in (*ups, *downs):
        await step()
    row["upload_ratio"] = ratio(row["upload_mb_s"], row["direct_put_mb_s"])
    row["download_ratio"] = ratio(row["download_mb_s"], row["direct_get_mb_s"])
    return row


async def _parallel_download(service: ServiceClient, size: int) -> int:
    part = size // DOWNLOAD_STREAMS
    lengths = [part] * (DOWNLOAD_STREAMS - 1) + [0]  # 0: the last stream reads to the end
    received = await asyncio.gather(
        *(
            service.download("throughput/round-1.bin", index * part, length)
            for index, length in enumerate(lengths)
        )
    )
    return sum(received)


async def _concurrent_uploads(service: ServiceClient, source: Source) -> list[Uploaded]:
    quarter = source.quarter
    return list(
        await asyncio.gather(
            *(
                service.upload(source.path, index * quarter, quarter, f"concurrent/{index + 1}.bin")
                for index in range(CONCURRENT_UPLOADS)
            )
        )
    )


async def _dedup(
    service: ServiceClient, timed: Timed, source: Source, warnings: list[str]
) -> float:
    """Store half the file once (untimed), then time an upload of it with its digest."""
    half = source.size // 2
    _say(f"artifacts: storing {half // MIB} MiB once for the dedup upload ...")
    primed = await service.upload(source.path, 0, half, "dedup/first.bin")
    _check_artifact(primed, half, source.half_sha256)
    elapsed, again = await timed.run(
        "dedup_upload",
        lambda: service.upload(source.path, 0, half, "dedup/again.bin", source.half_sha256),
    )
    _check_artifact(again, half, source.half_sha256)
    if not again.deduplicated:
        warnings.append("the upload with a stored digest was not deduplicated at StartUpload")
    _say(f"artifacts: dedup upload {elapsed:.3f} s (deduplicated: {again.deduplicated})")
    return round(elapsed, 3)


def _check_artifact(uploaded: Uploaded, size: int, sha256: str) -> None:
    artifact = uploaded.artifact
    if artifact.size_bytes != size or artifact.sha256 != sha256:
        raise RuntimeError(
            f"{artifact.name}: stored {artifact.size_bytes} bytes with sha256 "
            f"{artifact.sha256}, expected {size} bytes with {sha256}"
        )


def _check_size(what: str, received: int, size: int) -> None:
    if received != size:
        raise RuntimeError(f"{what}: {received} bytes arrived, expected {size}")


def setup(size_mib: int) -> dict[str, Any]:
    size = size_mib * MIB
    return {
        "file": f"{size_mib} MiB ({size} bytes) from os.urandom, written once to the "
        "temporary directory (disk, fsynced), read back from the page cache",
        "service_client": "this process (apart from the server): grpc.aio on uvloop, "
        "modelregistry.server.GRPC_OPTIONS, 1 MiB chunks read with readinto (one bytes copy "
        "each: protobuf takes only bytes); StartUpload with size_bytes, no sha256, a new path "
        "per upload, then one Write stream with finish on the last message",
        "direct_client": f"minio {_minio_version()} to the same SeaweedFS and bucket: "
        f"fput_object with part_size {DIRECT_PART_BYTES // MIB} MiB (3 parallel part uploads, "
        "minio's default), get_object().stream(1 MiB); over https minio puts a Content-MD5 "
        "on each part, as it does for any client",
        "https": "the same rounds with the store reached over https: SeaweedFS serves S3 on a "
        "second port with a certificate from a CA made for the run (cryptography); a second "
        "`modelreg serve` on the same database with MODELREG_S3_SECURE and "
        "MODELREG_S3_CA_FILE, and minio over https trusting the same CA; keys *_https",
        "server_cpu_ms_per_mb": "CPU seconds of the server serving the route (http or https) "
        "over the rounds' transfers of that kind, per MB moved",
        "download_sink": "discarded (bytes counted and checked) for both the service and "
        "the direct download",
        "rounds": f"{ROUNDS}; each uploads then downloads through the service and directly, "
        "order alternating (round 1 service first); MB/s with MB = 10^6 bytes, median of the "
        "rounds; ratios are median service / median direct",
        "dedup_at_commit": "every throughput upload carries the same content: from the second "
        "on the server finds the digest stored at commit and deletes the new copy (the bytes "
        "still travel, are hashed and stored first)",
        "parallel_download": f"{DOWNLOAD_STREAMS} ranged Download streams of the whole file at "
        f"once, aggregate MB/s, median of {ROUNDS}",
        "sequential_upload": f"the {CONCURRENT_UPLOADS} quarters of the file uploaded one "
        "after another (each its own StartUpload and Write stream), aggregate MB/s; "
        "concurrent_quarters_upload_ratio = concurrent_upload_mb_s / sequential_upload_mb_s "
        "(parallel_upload_ratio is the client's upload_files, see client_paths)",
        "concurrent_upload": f"{CONCURRENT_UPLOADS} uploads of {size_mib // CONCURRENT_UPLOADS} "
        "MiB (distinct quarters of the file) at once, aggregate MB/s; their StartUpload "
        "calls and their Write streams at once",
        "server_rss": f"idle after {IDLE_BEFORE_RSS_S:g} s quiet, just before the concurrent "
        f"uploads; peak sampled with psutil every {RSS_SAMPLE_S * 1000:g} ms during them; "
        "server_rss_before_transfers_mib just before the first transfer, "
        f"server_rss_idle_after_mib {IDLE_AFTER_S:g} s after the last one (the dedup upload), "
        "server_rss_back_within_slack_after_s: when it was first within "
        f"{IDLE_RSS_SLACK_MIB:g} MiB of before (sampled every 0.25 s)",
        "dedup_upload_s": f"{size_mib // 2} MiB stored once beforehand; then StartUpload with "
        "size and sha256 of the same content (computed beforehand, untimed) until COMMITTED",
        "cores_busy": "mean cores used by the server, SeaweedFS and this client during each "
        "kind of transfer (CPU seconds / wall seconds)",
    }


def _minio_version() -> str:
    from importlib.metadata import version

    return version("minio")


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# --- client paths: shards in parallel and direct reads (issue 14, items 4 and 5) ---------------

SHARDS = 4
SHARDS_MODEL = "bench-shards"


async def client_paths(
    target: str, token: str, workdir: Path, s3: processes.S3Target, size_mib: int
) -> dict[str, Any]:
    """`parallel_upload_ratio`: SHARDS files of size/SHARDS each uploaded by
    `modelregistry.transfer.upload_files` SHARDS at once over one after another; and
    `direct_download_ratio`: the shards read through presigned URLs from GetArtifactDownloadUrl
    over the same bytes read with a direct minio GET (both discarded, counted)."""
    from modelregistry import client, transfer  # the shipped client, as a user runs it

    shard_size = size_mib * MIB // SHARDS
    shards = [workdir / f"shard-{index + 1}-of-{SHARDS}.bin" for index in range(SHARDS)]
    for shard in shards:
        await asyncio.to_thread(_random_file, shard, shard_size)
    report: dict[str, Any] = {}
    with client.connect(target, token=token) as channel:
        parent = await asyncio.to_thread(_shards_version, channel)

        def upload(prefix: str, parallel: int) -> list[artifact_pb2.Artifact]:
            items = [transfer.UploadItem(s, f"{prefix}/{s.name}") for s in shards]
            # No declared digest: no dedup at StartUpload, the bytes travel both times.
            return transfer.upload_files(
                channel, parent, items, parallel=parallel, declare_sha256=False
            )

        total = shard_size * SHARDS
        # Two rounds in opposite orders, so that a load that drifts during the run (a shared
        # machine) does not favour whichever goes second.
        one_by_one: list[float] = []
        at_once: list[float] = []
        for index, order in enumerate(((1, SHARDS), (SHARDS, 1))):
            for parallel in order:
                seconds, uploaded = await _timed(
                    functools.partial(upload, f"round-{index + 1}-parallel-{parallel}", parallel)
                )
                (one_by_one if parallel == 1 else at_once).append(mb_per_s(total, seconds))
        report["parallel_upload_one_by_one_mb_s"] = median(one_by_one)
        report["parallel_upload_at_once_mb_s"] = median(at_once)
        report["parallel_upload_ratio"] = ratio(
            report["parallel_upload_at_once_mb_s"], report["parallel_upload_one_by_one_mb_s"]
        )
        _say(
            f"artifacts: {SHARDS} shards one by one {report['parallel_upload_one_by_one_mb_s']}"
            f" MB/s, at once {report['parallel_upload_at_once_mb_s']} MB/s"
        )

        direct = DirectClient(s3)
        keys = [f"{DIRECT_PREFIX}{s.name}" for s in shards]
        for shard, key in zip(shards, keys, strict=True):
            await asyncio.to_thread(direct.put, shard, key)
        stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        presigned: list[float] = []
        minio_get: list[float] = []
        for index in range(ROUNDS):

            async def by_url() -> None:
                seconds, received = await _timed(lambda: _read_presigned(stub, uploaded))
                _check_size("presigned read", received, total)
                presigned.append(mb_per_s(total, seconds))

            async def by_minio() -> None:
                seconds, received = await _timed(lambda: sum(direct.get(k) for k in keys))
                _check_size("direct read", received, total)
                minio_get.append(mb_per_s(total, seconds))

            for step in (by_url, by_minio) if index % 2 == 0 else (by_minio, by_url):
                await step()
        report["direct_download_mb_s"] = median(presigned)
        report["direct_download_minio_get_mb_s"] = median(minio_get)
        report["direct_download_ratio"] = ratio(
            report["direct_download_mb_s"], report["direct_download_minio_get_mb_s"]
        )
        _say(f"artifacts: presigned reads {presigned} MB/s, minio GET {minio_get} MB/s")
    for shard in shards:
        await asyncio.to_thread(shard.unlink)
    return report


def client_paths_setup(size_mib: int) -> dict[str, str]:
    return {
        "parallel_upload": f"{SHARDS} random files of {size_mib // SHARDS} MiB uploaded with "
        f"modelregistry.transfer.upload_files (sync gRPC, no declared digest) with parallel=1 "
        f"and parallel={SHARDS}, two rounds in opposite orders, into new paths of one version; "
        "ratio of the medians at once / one by one",
        "direct_download": "the same shards read through GetArtifactDownloadUrl URLs with "
        "urllib3 (1 MiB reads, discarded) vs minio get_object().stream(1 MiB) of copies put "
        f"directly; one shard after another, order alternating, median of {ROUNDS}",
    }


async def _timed(work: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await asyncio.to_thread(work)
    return time.perf_counter() - started, result


def _random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))
        f.write(os.urandom(size % MIB))


def _shards_version(channel: grpc.Channel) -> str:
    registry = registry_service_pb2_grpc.RegistryServiceStub(channel)
    registry.CreateModel(
        registry_service_pb2.CreateModelRequest(model_id=SHARDS_MODEL), timeout=30.0
    )
    version = registry.CreateModelVersion(
        registry_service_pb2.CreateModelVersionRequest(parent=f"models/{SHARDS_MODEL}"),
        timeout=30.0,
    )
    return str(version.name)


def _read_presigned(
    stub: artifact_service_pb2_grpc.ArtifactServiceStub, artifacts: list[artifact_pb2.Artifact]
) -> int:
    import urllib3

    http = urllib3.PoolManager()
    received = 0
    for artifact in artifacts:
        found = stub.GetArtifactDownloadUrl(
            artifact_service_pb2.GetArtifactDownloadUrlRequest(name=artifact.name), timeout=30.0
        )
        response = http.request("GET", found.url, preload_content=False)
        try:
            if response.status != 200:
                raise RuntimeError(f"presigned GET answered HTTP {response.status}")
            while chunk := response.read(CHUNK_BYTES):
                received += len(chunk)
        finally:
            response.release_conn()
    return received
