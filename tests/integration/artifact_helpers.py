"""Shared by the artifact tests: files on disk, an upload/download driver over the raw
generated stubs (StartUpload -> Write stream of 1 MiB chunks -> finish; Download), a way to
break a Write stream after N bytes, a resuming writer, bucket listings and `modelreg gc`.

Files are streamed from disk, never held whole in memory: the big ones are 256 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from integration.helpers import Stub, create_version, error_details
from support.server import s3_env
from support.stores import StoreEndpoints
from support.stubs import ArtifactServiceAsyncStub

from modelregistry.v1 import artifact_pb2
from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1 import registry_service_pb2 as pb

Artifacts = ArtifactServiceAsyncStub
Session = artifact_pb2.UploadSession

KIB = 1 << 10
MIB = 1 << 20
CHUNK = MIB  # what the contract says to send
PART = 16 * MIB  # the server's storage part for undeclared or modest sizes
BLOB_PREFIX = "blobs/"
MODELREG = str(Path(sys.executable).with_name("modelreg"))

ACTIVE = Session.STATE_ACTIVE
COMMITTED = Session.STATE_COMMITTED
ABORTED = Session.STATE_ABORTED


# -- files --------------------------------------------------------------------------------


def write_random_file(path: Path, size: int, block: int = 4 * MIB) -> str:
    """Fill `path` with `size` random bytes, a block at a time; returns the hex SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            data = os.urandom(min(block, remaining))
            digest.update(data)
            out.write(data)
            remaining -= len(data)
    return digest.hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class LocalFile:
    """A file on disk with its size and SHA-256."""

    path: Path
    size: int
    sha256: str

    @classmethod
    def random(cls, path: Path, size: int) -> LocalFile:
        return cls(path, size, write_random_file(path, size))

    @classmethod
    def of_bytes(cls, path: Path, data: bytes) -> LocalFile:
        path.write_bytes(data)
        return cls(path, len(data), sha256_hex(data))

    def read(self, offset: int, length: int) -> bytes:
        with self.path.open("rb") as f:
            f.seek(offset)
            return f.read(length)


def write_requests(
    upload_id: str,
    file: LocalFile,
    start: int = 0,
    end: int | None = None,
    *,
    finish: bool = True,
    chunk: int = CHUNK,
) -> Iterator[apb.WriteRequest]:
    """WriteRequests for file[start:end] in `chunk`-byte messages; `finish` on the last one
    (a lone empty message with `finish` when the range is empty)."""
    end = file.size if end is None else end
    with file.path.open("rb") as f:
        f.seek(start)
        offset = start
        if offset >= end:
            if finish:
                yield apb.WriteRequest(upload_id=upload_id, offset=offset, finish=True)
            return
        while offset < end:
            data = f.read(min(chunk, end - offset))
            last = offset + len(data) >= end
            yield apb.WriteRequest(
                upload_id=upload_id, offset=offset, data=data, finish=finish and last
            )
            offset += len(data)


# -- versions and names ---------------------------------------------------------------------


async def new_version(registry: Stub, model_id: str = "weights") -> str:
    """Name of a new version in DEVELOPMENT (the model is created if it is not there)."""
    with contextlib.suppress(grpc.aio.AioRpcError):  # ALREADY_EXISTS on the second call
        await registry.CreateModel(pb.CreateModelRequest(model_id=model_id))
    version = await create_version(registry, model=model_id)
    return str(version.name)


def artifact_name(version: str, path: str) -> str:
    return f"{version}/artifacts/{path}"


# -- uploads --------------------------------------------------------------------------------


async def start_upload(
    artifacts: Artifacts,
    version: str,
    path: str,
    file: LocalFile | None = None,
    *,
    declare_size: bool = True,
    declare_sha256: bool = True,
    size_bytes: int | None = None,
    sha256: str = "",
    content_type: str = "",
) -> Session:
    """StartUpload, declaring `file`'s size and digest unless told otherwise (explicit
    `size_bytes` / `sha256` win, so tests can declare wrong ones)."""
    if file is not None:
        if size_bytes is None and declare_size:
            size_bytes = file.size
        if not sha256 and declare_sha256:
            sha256 = file.sha256
    request = apb.StartUploadRequest(
        parent=version, path=path, sha256=sha256, content_type=content_type
    )
    if size_bytes is not None:
        request.size_bytes = size_bytes
    session: Session = await artifacts.StartUpload(request)
    return session


async def query(artifacts: Artifacts, upload_id: str) -> Session:
    session: Session = await artifacts.QueryUpload(apb.QueryUploadRequest(upload_id=upload_id))
    return session


async def write(
    artifacts: Artifacts,
    upload_id: str,
    file: LocalFile,
    start: int = 0,
    end: int | None = None,
    *,
    finish: bool = True,
) -> apb.WriteResponse:
    """One Write stream carrying file[start:end]."""
    response: apb.WriteResponse = await artifacts.Write(
        write_requests(upload_id, file, start, end, finish=finish)
    )
    return response


async def write_then_break(
    artifacts: Artifacts,
    upload_id: str,
    file: LocalFile,
    start: int,
    stop_at: int,
    *,
    before_break: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """Open a Write stream, send file[start:stop_at] without `finish`, await `before_break`
    (if given) and cancel the call: a client that died mid-stream."""
    call = artifacts.Write()
    try:
        for request in write_requests(upload_id, file, start, stop_at, finish=False):
            await call.write(request)
        if before_break is not None:
            await before_break()
    finally:
        call.cancel()


async def wait_committed(
    artifacts: Artifacts, upload_id: str, at_least: int, within_s: float = 60.0
) -> Session:
    """Poll QueryUpload until `at_least` bytes are committed."""
    deadline = time.monotonic() + within_s
    while True:
        session = await query(artifacts, upload_id)
        if session.committed_size >= at_least:
            return session
        if time.monotonic() > deadline:
            raise AssertionError(
                f"committed_size stayed {session.committed_size}, expected >= {at_least}"
            )
        await asyncio.sleep(0.05)


@dataclass
class ResumeLog:
    """What a resuming writer went through: the offsets it resumed at, the codes it retried."""

    resumed_at: list[int] = field(default_factory=list)
    retried: list[grpc.StatusCode] = field(default_factory=list)


RETRYABLE = frozenset({grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION})


def status_lost(error: grpc.aio.AioRpcError) -> bool:
    """grpc.aio replaced the server's status with INTERNAL: the server ended a client stream
    while a write was in flight (grpc/grpc#36066, fix pending in grpc/grpc#43486). The real
    code is gone; a client can only ask QueryUpload where things stand."""
    return error.code() == grpc.StatusCode.INTERNAL and "execute_batch" in (
        error.debug_error_string() or ""
    )


async def resume_upload(
    artifacts: Artifacts,
    upload_id: str,
    file: LocalFile,
    *,
    log: ResumeLog | None = None,
    retry: frozenset[grpc.StatusCode] = RETRYABLE,
    within_s: float = 90.0,
) -> artifact_pb2.Artifact:
    """What a careful client does: ask where to resume, write the rest with `finish`; on a
    retryable error ask again (another writer may hold the session, or have finished it)."""
    log = log if log is not None else ResumeLog()
    deadline = time.monotonic() + within_s
    delay = 0.05
    while True:
        session = await query(artifacts, upload_id)
        if session.state == COMMITTED:
            return session.result
        assert session.state == ACTIVE, f"the session is {Session.State.Name(session.state)}"
        assert 0 <= session.committed_size <= file.size
        log.resumed_at.append(session.committed_size)
        try:
            response = await write(artifacts, upload_id, file, session.committed_size)
        except grpc.aio.AioRpcError as error:
            if (error.code() not in retry and not status_lost(error)) or (
                time.monotonic() > deadline
            ):
                raise
            log.retried.append(error.code())
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        assert response.artifact.sha256, "finish returned no artifact"
        assert response.committed_size == file.size
        return response.artifact


async def upload(
    artifacts: Artifacts,
    version: str,
    path: str,
    file: LocalFile,
    *,
    declare_size: bool = True,
    declare_sha256: bool = False,
) -> artifact_pb2.Artifact:
    """StartUpload and one Write stream of the whole file (nothing when deduplicated)."""
    session = await start_upload(
        artifacts,
        version,
        path,
        file,
        declare_size=declare_size,
        declare_sha256=declare_sha256,
    )
    if session.state == COMMITTED:
        return session.result
    assert session.state == ACTIVE
    assert session.committed_size == 0
    response = await write(artifacts, session.upload_id, file)
    return response.artifact


async def list_artifacts(artifacts: Artifacts, version: str) -> list[artifact_pb2.Artifact]:
    found: list[artifact_pb2.Artifact] = []
    token = ""
    while True:
        page = await artifacts.ListArtifacts(
            apb.ListArtifactsRequest(parent=version, page_token=token)
        )
        found.extend(page.artifacts)
        token = page.next_page_token
        if not token:
            return found


# -- downloads ------------------------------------------------------------------------------


async def download(
    artifacts: Artifacts, name: str, offset: int = 0, length: int = 0
) -> tuple[artifact_pb2.Artifact, bytes]:
    """(artifact, data) of a range small enough to hold in memory."""
    artifact: artifact_pb2.Artifact | None = None
    parts: list[bytes] = []
    async for message in artifacts.Download(
        apb.DownloadRequest(name=name, offset=offset, length=length)
    ):
        kind = message.WhichOneof("content")
        if artifact is None:
            assert kind == "artifact", "the first Download message must carry the artifact"
            artifact = message.artifact
        else:
            assert kind == "data", "only the first Download message carries the artifact"
            parts.append(message.data)
    assert artifact is not None, "Download sent nothing"
    return artifact, b"".join(parts)


async def assert_download_matches(
    artifacts: Artifacts, name: str, file: LocalFile, offset: int = 0, length: int = 0
) -> artifact_pb2.Artifact:
    """Download a range and compare it with the file on disk as it streams (any size)."""
    end = file.size if length == 0 else min(file.size, offset + length)
    artifact: artifact_pb2.Artifact | None = None
    position = offset
    digest = hashlib.sha256()
    with file.path.open("rb") as local:
        local.seek(offset)
        async for message in artifacts.Download(
            apb.DownloadRequest(name=name, offset=offset, length=length)
        ):
            kind = message.WhichOneof("content")
            if artifact is None:
                assert kind == "artifact", "the first Download message must carry the artifact"
                artifact = message.artifact
                continue
            assert kind == "data", "only the first Download message carries the artifact"
            expected = local.read(len(message.data))
            assert message.data == expected, f"downloaded bytes differ near offset {position}"
            digest.update(message.data)
            position += len(message.data)
    assert artifact is not None, "Download sent nothing"
    assert position == end, f"downloaded {position - offset} bytes, expected {end - offset}"
    if offset == 0 and end == file.size:
        assert digest.hexdigest() == file.sha256
    return artifact


# -- the bucket -----------------------------------------------------------------------------


def object_names(endpoints: StoreEndpoints, bucket: str, prefix: str = "") -> list[str]:
    client = endpoints.s3_client()
    return sorted(
        str(entry.object_name)
        for entry in client.list_objects(bucket, prefix=prefix or None, recursive=True)
    )


def multipart_uploads(endpoints: StoreEndpoints, bucket: str) -> list[str]:
    """Object names of the bucket's incomplete multipart uploads (private minio API: the
    public one offers no listing)."""
    result = endpoints.s3_client()._list_multipart_uploads(bucket)
    return sorted(str(upload.object_name) for upload in result.uploads)


async def bucket_objects(endpoints: StoreEndpoints, bucket: str, prefix: str = "") -> list[str]:
    return await asyncio.to_thread(object_names, endpoints, bucket, prefix)


# -- processes ------------------------------------------------------------------------------


def server_env(database_url: str, endpoints: StoreEndpoints, bucket: str) -> dict[str, str]:
    return {
        **os.environ,
        **s3_env(endpoints, bucket),
        "MODELREG_DATABASE_URL": database_url,
        "MODELREG_LOG_FORMAT": "json",
    }


@dataclass
class GcRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        try:
            parsed: dict[str, Any] = json.loads(self.stdout)
        except json.JSONDecodeError:
            parsed = json.loads(lines[-1])
        return parsed


async def run_gc(
    database_url: str, endpoints: StoreEndpoints, bucket: str, *args: str, timeout_s: float = 60
) -> GcRun:
    """`modelreg gc --json ARGS` as an operator runs it; asserts it succeeded."""
    process = await asyncio.create_subprocess_exec(
        MODELREG,
        "gc",
        "--json",
        *args,
        env=server_env(database_url, endpoints, bucket),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    run = GcRun(process.returncode or 0, stdout.decode(), stderr.decode())
    assert run.returncode == 0, f"modelreg gc exited {run.returncode}: {run.stderr[-2000:]}"
    return run


async def health_status(channel: grpc.aio.Channel) -> int:
    # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
    response = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
        health_pb2.HealthCheckRequest(service=""), timeout=2
    )
    status: int = response.status
    return status


async def wait_for_health(channel: grpc.aio.Channel, wanted: int, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    status: int | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(grpc.aio.AioRpcError):
            status = await health_status(channel)
            if status == wanted:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"health stayed {status}, expected {wanted}")


def committed_size_detail(error: grpc.aio.AioRpcError) -> str | None:
    """The ErrorInfo metadata `committed_size` of a refused Write, if any."""
    for info in error_details(error).error_infos:
        if "committed_size" in info.metadata:
            return str(info.metadata["committed_size"])
    return None
