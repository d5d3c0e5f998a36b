"""Moving artifact bytes: resumable uploads and parallel, ranged, verified downloads.

Synchronous gRPC on purpose. The CLI is synchronous; a sync stream-unary call pulls its
request iterator from a gRPC thread only as fast as HTTP/2 flow control lets bytes out (so a
slow store slows the file reads, with nothing queued in between); and parallel range downloads
are plain threads whose time goes to the gRPC core, `os.pwrite` and hashlib, all of which
release the GIL. grpc.aio would add an event loop to every caller for no gain here.

    from modelregistry import client, transfer

    with client.connect("127.0.0.1:50051", token=token) as channel:
        artifact = transfer.upload_file(channel, "llama/3", "weights/model.safetensors", path)
        transfer.download_file(channel, artifact.name, "out/model.safetensors")

Both helpers take a channel or an `ArtifactServiceStub`, survive broken streams (they back off,
ask where to resume and continue from there: an upload never starts over) and give up after
`retries` consecutive failures without progress, raising the last `grpc.RpcError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import grpc

from modelregistry import client
from modelregistry.v1 import artifact_pb2, artifact_service_pb2, artifact_service_pb2_grpc

if TYPE_CHECKING:
    from hashlib import _Hash

    import urllib3

    # An open Download: a call that iterates its responses (grpc-stubs names it privately).
    from grpc import _CallIterator

    _DownloadCall = _CallIterator[artifact_service_pb2.DownloadResponse]

_MiB = 1024 * 1024
# PERF-NOTES: 1 MiB messages are the fastest; the server advertises the same in the session.
CHUNK_SIZE = _MiB
DEFAULT_PARALLEL_THRESHOLD = 64 * _MiB
DEFAULT_STREAMS = 4
DEFAULT_RETRIES = 8
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0

# A stream that broke rather than a request that was refused: resume after a backoff.
# ABORTED is "another stream is writing this session" (a dropped stream's parts are still
# draining, or its lease has not expired); INTERNAL is what gRPC reports for some connection
# drops (RST_STREAM); RESOURCE_EXHAUSTED is a server at its limit of concurrent uploads.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

Progress = Callable[[int, int], None]
"""Called with (bytes done, total bytes) as a transfer advances; may go back on a resume."""

StubOrChannel = grpc.Channel | artifact_service_pb2_grpc.ArtifactServiceStub
_RequestT = TypeVar("_RequestT")
_ResponseT = TypeVar("_ResponseT")


class TransferError(Exception):
    """A transfer that cannot complete for a reason other than a gRPC status."""


class ChecksumMismatch(TransferError):
    """Downloaded bytes whose SHA-256 is not the expected one; no file was left behind."""


class UnsafePath(ValueError):
    """An artifact path that would land outside the destination directory."""


# --- pure pieces ----------------------------------------------------------------------------


def backoff_delay(
    attempt: int,
    *,
    base: float = BACKOFF_BASE_S,
    cap: float = BACKOFF_CAP_S,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): exponential, capped, jittered.

    The ceiling doubles from `base` up to `cap`; the delay is drawn from its upper half
    ("equal jitter"), so clients that broke together spread out but none retries at once.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def split_ranges(size: int, streams: int, align: int = CHUNK_SIZE) -> list[tuple[int, int]]:
    """Split [0, size) into at most `streams` contiguous (start, end) ranges.

    Boundaries fall on multiples of `align` (so every range but the last moves whole
    chunks), ranges are never empty and together cover the file exactly.
    """
    if size < 0 or streams < 1 or align < 1:
        raise ValueError("size >= 0, streams >= 1 and align >= 1 required")
    if size == 0:
        return []
    blocks = -(-size // align)
    count = min(streams, blocks)
    per, extra = divmod(blocks, count)
    ranges: list[tuple[int, int]] = []
    start_block = 0
    for i in range(count):
        end_block = start_block + per + (1 if i < extra else 0)
        ranges.append((start_block * align, min(end_block * align, size)))
        start_block = end_block
    return ranges


def check_relative_path(path: str) -> PurePosixPath:
    """An artifact path as a safe relative path: no absolute, empty, `.` or `..` segments."""
    if not path or "\x00" in path:
        raise UnsafePath(f"{path!r} is not a usable file path")
    if path.startswith("/"):
        raise UnsafePath(f"{path!r} is absolute")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePath(f"{path!r} has an empty, '.' or '..' segment")
    return PurePosixPath(*parts)


def safe_destination(root: str | os.PathLike[str], path: str) -> Path:
    """Where artifact `path` goes under directory `root`, refusing anything that escapes it.

    Checked twice: the path's own form, then the resolved location (so a symlink inside
    `root` that points elsewhere is refused too).
    """
    relative = check_relative_path(path)
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if target == base or not target.is_relative_to(base):
        raise UnsafePath(f"{path!r} would be written outside {str(base)!r}")
    return base / relative


def manifest_digest(entries: Sequence[artifact_pb2.ManifestEntry]) -> str:
    """The version digest as the registry defines it: `sha256:` over sorted manifest lines."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.path.encode()):
        digest.update(f"{entry.sha256}  {entry.size_bytes}  {entry.path}\n".encode())
    return "sha256:" + digest.hexdigest()


def sha256_file(path: str | os.PathLike[str], progress: Progress | None = None) -> str:
    """Lowercase hex SHA-256 of a file, read in 1 MiB blocks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        total = os.fstat(f.fileno()).st_size
        done = 0
        while n := f.readinto(buffer):
            digest.update(view[:n])
            done += n
            if progress:
                progress(done, total)
    return digest.hexdigest()


# --- helpers --------------------------------------------------------------------------------


def artifact_stub(channel_or_stub: StubOrChannel) -> artifact_service_pb2_grpc.ArtifactServiceStub:
    if isinstance(channel_or_stub, grpc.Channel):
        return artifact_service_pb2_grpc.ArtifactServiceStub(channel_or_stub)
    return channel_or_stub


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(error, "code", None)
    return code() if callable(code) else None


def _committed_size(error: grpc.RpcError) -> int | None:
    value = client.error_details(error).metadata.get("committed_size")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class _Retry:
    """Counts consecutive failures without progress; sleeps the backoff or re-raises."""

    retries: int
    sleep: Callable[[float], None] = time.sleep
    failures: int = 0

    def progressed(self) -> None:
        self.failures = 0

    def failed(self, error: BaseException, *, wait: bool = True) -> None:
        self.failures += 1
        if self.failures > self.retries:
            raise error
        if wait:
            self.sleep(backoff_delay(self.failures))


# --- upload ---------------------------------------------------------------------------------

_COMMITTED = artifact_pb2.UploadSession.STATE_COMMITTED
_ABORTED = artifact_pb2.UploadSession.STATE_ABORTED


def upload_file(
    channel_or_stub: StubOrChannel,
    version_name: str,
    path_in_version: str,
    local_file: str | os.PathLike[str],
    *,
    content_type: str | None = None,
    declare_sha256: bool = True,
    progress: Progress | None = None,
    hash_progress: Progress | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: float | None = client.DEFAULT_TIMEOUT_S,
    cancel: threading.Event | None = None,
) -> artifact_pb2.Artifact:
    """Upload `local_file` as `path_in_version` of a version in DEVELOPMENT; return the Artifact.

    `version_name` is `models/M/versions/V` or `M/V`. With `declare_sha256` the file is hashed
    first (`hash_progress` reports that pass), so content the registry already holds is not
    sent at all, and the server checks the digest at commit. The size is always declared.
    Bytes go in 1 MiB messages; a broken stream is resumed from the server's committed size
    after a backoff. `timeout` bounds each unary call; the stream itself has no deadline.
    Raises grpc.RpcError for a refused request (e.g. DATA_LOSS when the bytes changed under
    the upload, ALREADY_EXISTS for a path the version has) or after `retries` failures.
    Setting `cancel` ends the stream at its next message (TransferError; the session stays
    open at its committed size).
    """
    stub = artifact_stub(channel_or_stub)
    parent = client.version_name(version_name)
    retry = _Retry(retries)
    with open(local_file, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        digest = sha256_file(local_file, hash_progress) if declare_sha256 else ""
        request = artifact_service_pb2.StartUploadRequest(
            parent=parent,
            path=path_in_version,
            size_bytes=size,
            sha256=digest,
            content_type=content_type or "",
        )
        session: artifact_pb2.UploadSession = _unary_with_retry(
            stub.StartUpload, request, timeout, retry
        )
        if session.state == _COMMITTED:  # content-addressed: nothing to send
            if progress:
                progress(size, size)
            return session.result
        return _write_session(stub, session, f.fileno(), size, progress, retry, timeout, cancel)


def _unary_with_retry(
    method: grpc.UnaryUnaryMultiCallable[_RequestT, _ResponseT],
    request: _RequestT,
    timeout: float | None,
    retry: _Retry,
) -> _ResponseT:
    # Only for calls that are safe to repeat or whose repeat fails loudly (StartUpload gives
    # ALREADY_EXISTS if a lost response had in fact opened the session).
    while True:
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as error:
            if _code(error) not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            retry.failed(error)


def _write_session(
    stub: artifact_service_pb2_grpc.ArtifactServiceStub,
    session: artifact_pb2.UploadSession,
    fd: int,
    size: int,
    progress: Progress | None,
    retry: _Retry,
    timeout: float | None,
    cancel: threading.Event | None = None,
) -> artifact_pb2.Artifact:
    upload_id = session.upload_id
    offset = session.committed_size
    while True:
        local_failure: list[BaseException] = []
        ended = threading.Event()
        requests = _write_requests(
            fd, upload_id, offset, size, progress, local_failure, ended, cancel
        )
        try:
            response: artifact_service_pb2.WriteResponse = stub.Write(requests)
        except grpc.RpcError as error:
            ended.set()
            if local_failure:
                raise local_failure[0] from error
            code = _code(error)
            resync = _committed_size(error)
            if code is grpc.StatusCode.FAILED_PRECONDITION and resync is not None:
                retry.failed(error, wait=False)  # a wrong offset: no need to wait
                offset = _resumed(offset, resync, retry, progress, size)
                continue
            if code is grpc.StatusCode.FAILED_PRECONDITION:
                # Not ACTIVE: perhaps our own finish committed and only the reply was lost.
                found = _query(stub, upload_id, timeout, retry)
                if found.state == _COMMITTED:
                    return found.result
                raise
            if code not in RETRYABLE_CODES:
                raise
            retry.failed(error)
            found = _query(stub, upload_id, timeout, retry)
            if found.state == _COMMITTED:
                return found.result
            if found.state == _ABORTED:
                raise TransferError(
                    f"upload {upload_id} was aborted on the server; start a new upload"
                ) from error
            offset = _resumed(offset, found.committed_size, retry, progress, size)
            continue
        ended.set()
        if local_failure:
            raise local_failure[0]
        if response.HasField("artifact"):
            return response.artifact
        found = _query(stub, upload_id, timeout, retry)  # finished without the artifact echoed
        if found.state == _COMMITTED:
            return found.result
        raise TransferError(f"upload {upload_id} ended without a commit")


def _resumed(old: int, committed: int, retry: _Retry, progress: Progress | None, size: int) -> int:
    if committed > old:
        retry.progressed()
    if progress:
        progress(committed, size)
    return committed


def _query(
    stub: artifact_service_pb2_grpc.ArtifactServiceStub,
    upload_id: str,
    timeout: float | None,
    retry: _Retry,
) -> artifact_pb2.UploadSession:
    request = artifact_service_pb2.QueryUploadRequest(upload_id=upload_id)
    return _unary_with_retry(stub.QueryUpload, request, timeout, retry)


def _write_requests(
    fd: int,
    upload_id: str,
    start: int,
    size: int,
    progress: Progress | None,
    failure: list[BaseException],
    ended: threading.Event,
    cancel: threading.Event | None = None,
) -> Iterator[artifact_service_pb2.WriteRequest]:
    """The messages of one Write stream from `start`; the last carries `finish`.

    Consumed by a gRPC thread, which may still be inside it when the call has already
    failed and the next stream started: hence positional reads (no shared file offset), a
    buffer of its own and `ended`, set by the caller once the call is over. A local failure
    (the file shrank) is recorded in `failure` and ends the stream without `finish`, rather
    than raising into gRPC (which would log it and report only UNKNOWN).
    """
    WriteRequest = artifact_service_pb2.WriteRequest
    pos = start
    if pos >= size:
        yield WriteRequest(upload_id=upload_id, offset=pos, finish=True)
        return
    # One buffer per stream, reused: `bytes(view[:n])` is the one copy `data` needs. Measured
    # with the protobuf encode included, this is 4-5x faster than a fresh `os.pread` per chunk.
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while pos < size and not ended.is_set():
        if cancel is not None and cancel.is_set():
            failure.append(TransferError(f"upload {upload_id} cancelled at byte {pos}"))
            return
        n = os.preadv(fd, [view[: min(CHUNK_SIZE, size - pos)]], pos)
        if n == 0:
            failure.append(TransferError(f"the file shrank to {pos} bytes during the upload"))
            return
        end = pos + n
        yield WriteRequest(
            upload_id=upload_id, offset=pos, data=bytes(view[:n]), finish=end == size
        )
        pos = end
        if progress and not ended.is_set():
            progress(pos, size)


# --- download -------------------------------------------------------------------------------


@dataclass
class _Shared:
    """State the range workers of one download share."""

    total: int
    progress: Progress | None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    calls: set[_DownloadCall] = field(default_factory=set)
    cancel: threading.Event | None = None  # set by the caller: stop with TransferError

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n
            done = self.done
        if self.progress:
            self.progress(done, self.total)

    def track(self, call: _DownloadCall) -> None:
        with self.lock:
            self.calls.add(call)

    def untrack(self, call: _DownloadCall) -> None:
        with self.lock:
            self.calls.discard(call)

    def cancel_all(self) -> None:
        self.stop.set()
        with self.lock:
            calls = list(self.calls)
        for call in calls:
            with contextlib.suppress(Exception):
                call.cancel()


def download_file(
    channel_or_stub: StubOrChannel,
    artifact_name: str,
    dest_path: str | os.PathLike[str],
    *,
    streams: int = DEFAULT_STREAMS,
    parallel_threshold: int = DEFAULT_PARALLEL_THRESHOLD,
    progress: Progress | None = None,
    retries: int = DEFAULT_RETRIES,
    expected_sha256: str | None = None,
    cancel: threading.Event | None = None,
) -> artifact_pb2.Artifact:
    """Download artifact `artifact_name` to `dest_path`; return its Artifact.

    Files larger than `parallel_threshold` are fetched as `streams` ranges at once. Bytes go
    into a preallocated temporary file next to the destination; each range resumes where it
    stopped if its stream breaks. The result's SHA-256 must equal the artifact's (and
    `expected_sha256`, e.g. from a version manifest) before it is renamed into place: on a
    mismatch ChecksumMismatch is raised and, as on any failure, no file is left behind.
    """
    stub = artifact_stub(channel_or_stub)
    dest = Path(dest_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    retry = _Retry(retries)
    first, artifact = _open_download(stub, artifact_name, 0, 0, retry)
    size = artifact.size_bytes
    ranges = split_ranges(size, streams) if size > parallel_threshold and streams > 1 else []
    shared = _Shared(total=size, progress=progress, cancel=cancel)
    shared.track(first)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.part"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            _preallocate(fd, size)
            if ranges:
                _fetch_parallel(stub, artifact, fd, ranges, first, shared, retries)
                actual = _sha256_fd(fd, size)
            else:
                digest = hashlib.sha256()
                _fetch_range(stub, artifact, fd, 0, size, first, shared, _Retry(retries), digest)
                actual = digest.hexdigest()
            _verify(artifact, actual, expected_sha256)
            os.fsync(fd)
        finally:
            os.close(fd)
            shared.cancel_all()
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return artifact


def _verify(artifact: artifact_pb2.Artifact, actual: str, expected: str | None) -> None:
    if actual != artifact.sha256:
        raise ChecksumMismatch(
            f"{artifact.name}: downloaded bytes have SHA-256 {actual}, "
            f"the registry says {artifact.sha256}"
        )
    if expected is not None and actual != expected.lower():
        raise ChecksumMismatch(
            f"{artifact.name}: downloaded bytes have SHA-256 {actual}, expected {expected}"
        )


def _preallocate(fd: int, size: int) -> None:
    # Reserve the space up front (a full disk fails now, not at 90 %); pwrite fills it.
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except (OSError, AttributeError):  # filesystems without fallocate: a sparse file
        os.ftruncate(fd, size)


def _sha256_fd(fd: int, size: int) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    pos = 0
    while pos < size:
        n = os.preadv(fd, [view[: min(CHUNK_SIZE, size - pos)]], pos)
        if n == 0:
            break
        digest.update(view[:n])
        pos += n
    return digest.hexdigest()


def _open_download(
    stub: artifact_service_pb2_grpc.ArtifactServiceStub,
    name: str,
    offset: int,
    length: int,
    retry: _Retry,
) -> tuple[_DownloadCall, artifact_pb2.Artifact]:
    """Start a Download and read its first message: (the open call, the Artifact)."""
    while True:
        call = stub.Download(
            artifact_service_pb2.DownloadRequest(name=name, offset=offset, length=length)
        )
        try:
            head = next(call)
        except StopIteration:
            raise TransferError(f"{name}: the download stream was empty") from None
        except grpc.RpcError as error:
            if _code(error) not in RETRYABLE_CODES:
                raise
            retry.failed(error)
            continue
        if head.WhichOneof("content") != "artifact":
            call.cancel()
            raise TransferError(f"{name}: the download did not start with the artifact")
        return call, head.artifact


def _fetch_parallel(
    stub: artifact_service_pb2_grpc.ArtifactServiceStub,
    artifact: artifact_pb2.Artifact,
    fd: int,
    ranges: list[tuple[int, int]],
    first: _DownloadCall,
    shared: _Shared,
    retries: int,
) -> None:
    # The opening stream (from byte 0, to the end) serves the first range and is cancelled
    # where it ends: no extra round trip before the others start.
    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="download") as pool:
        futures = [
            pool.submit(
                _fetch_range,
                stub,
                artifact,
                fd,
                start,
                end,
                first if i == 0 else None,
                shared,
                _Retry(retries),
                None,
            )
            for i, (start, end) in enumerate(ranges)
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            shared.cancel_all()
            wait(futures)
            error = failed[0].exception()
            assert error is not None
            raise error


def _fetch_range(
    stub: artifact_service_pb2_grpc.ArtifactServiceStub,
    artifact: artifact_pb2.Artifact,
    fd: int,
    start: int,
    end: int,
    call: _DownloadCall | None,
    shared: _Shared,
    retry: _Retry,
    digest: _Hash | None,
) -> None:
    """Write bytes [start, end) of the artifact at their offsets in `fd`, resuming on breaks.

    `call` is an open stream already past its header that starts at `start`, or None.
    `digest`, when given, is fed the bytes in order (only for a single range from 0).
    """
    pos = start
    while pos < end or call is not None:
        if shared.stop.is_set():
            return
        try:
            if call is None:
                call, again = _open_download(stub, artifact.name, pos, end - pos, retry)
                shared.track(call)
                if (again.sha256, again.size_bytes) != (artifact.sha256, artifact.size_bytes):
                    raise TransferError(f"{artifact.name} changed during the download")
            for message in call:
                if shared.cancel is not None and shared.cancel.is_set():
                    raise TransferError(f"{artifact.name}: download cancelled")
                data = message.data  # read once: every access copies
                take = min(len(data), end - pos)
                os.pwrite(fd, data if take == len(data) else memoryview(data)[:take], pos)
                if digest is not None:
                    digest.update(data if take == len(data) else memoryview(data)[:take])
                pos += take
                shared.advance(take)
                retry.progressed()
                if pos >= end:
                    break
            if pos < end:
                raise TransferError(
                    f"{artifact.name}: the stream ended at byte {pos}, expected {end}"
                )
        except grpc.RpcError as error:
            if shared.stop.is_set():
                return
            if _code(error) not in RETRYABLE_CODES:
                raise
            retry.failed(error)
        finally:
            if call is not None:
                if pos >= end:
                    call.cancel()  # the opening stream runs to the end of the file
                shared.untrack(call)
                call = None


# --- several files at once ------------------------------------------------------------------

DEFAULT_PARALLEL_FILES = 4

FilesProgress = Callable[[str, str, int, int], None]
"""Called with (path in the version, phase, bytes done, file size) from worker threads.

Phases: `hash` (reading the file for its digest), `upload` / `download` (bytes moved; may go
back on a resume), then `done` once the file is finished and verified. Only `upload` and
`download` bytes count toward the transfer's total.
"""


@dataclass(frozen=True)
class UploadItem:
    """One file of a multi-file upload: a local file and its path in the version."""

    local_file: Path
    path: str
    content_type: str | None = None


class TransfersFailed(TransferError):
    """Some files of a multi-file transfer failed; the others completed.

    `failures` maps each failed path to its error; `first` is the error of the first file
    (in the order given) that failed, re-raised as the cause, so callers that look at one
    error (e.g. a gRPC status for an exit code) see a real one.
    """

    def __init__(self, failures: dict[str, BaseException], completed: int) -> None:
        self.failures = failures
        self.completed = completed
        paths = ", ".join(list(failures)[:5]) + (" ..." if len(failures) > 5 else "")
        super().__init__(
            f"{len(failures)} of {len(failures) + completed} file(s) failed ({paths}); "
            f"{completed} completed"
        )

    @property
    def first(self) -> BaseException:
        return next(iter(self.failures.values()))


def _in_parallel(
    work: Sequence[tuple[str, Callable[[threading.Event], artifact_pb2.Artifact]]], parallel: int
) -> list[artifact_pb2.Artifact]:
    """Run each file's transfer on a pool of `parallel` threads; results in input order.

    One file's failure does not stop the others (each resumes its own stream): every file
    gets its chance, then the failures are raised together. Ctrl-C (any BaseException in the
    calling thread) drops queued files and tells running ones, through the event each gets,
    to stop at their next message, so the process can exit.
    """
    if parallel < 1:
        raise ValueError("parallel must be >= 1")
    results: dict[str, artifact_pb2.Artifact] = {}
    failures: dict[str, BaseException] = {}
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=min(parallel, len(work) or 1), thread_name_prefix="file")
    try:
        futures = {pool.submit(run, cancel): path for path, run in work}
        for future in futures:
            path = futures[future]
            try:
                results[path] = future.result()
            except Exception as failure:
                failures[path] = failure
    except BaseException:
        cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if failures:
        ordered = {path: failures[path] for path, _ in work if path in failures}
        if len(work) == 1:
            raise ordered[work[0][0]]
        failed = TransfersFailed(ordered, completed=len(results))
        raise failed from failed.first
    return [results[path] for path, _ in work]


def upload_files(
    channel_or_stub: StubOrChannel,
    version_name: str,
    items: Sequence[UploadItem],
    *,
    parallel: int = DEFAULT_PARALLEL_FILES,
    declare_sha256: bool = True,
    progress: FilesProgress | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: float | None = client.DEFAULT_TIMEOUT_S,
) -> list[artifact_pb2.Artifact]:
    """Upload several files into one version, `parallel` at a time; the Artifacts in order.

    Each file is an independent resumable upload (see `upload_file`): a broken stream resumes
    that file from its committed size while the others go on. If some files fail, the rest
    still complete and TransfersFailed (or, for a single file, its own error) is raised.
    """
    stub = artifact_stub(channel_or_stub)
    paths = [item.path for item in items]
    if len(set(paths)) != len(paths):
        raise ValueError("two files have the same path in the version")

    def one(item: UploadItem) -> Callable[[threading.Event], artifact_pb2.Artifact]:
        def run(cancel: threading.Event) -> artifact_pb2.Artifact:
            report = _phase_progress(progress, item.path)
            artifact = upload_file(
                stub,
                version_name,
                item.path,
                item.local_file,
                content_type=item.content_type,
                declare_sha256=declare_sha256,
                progress=report("upload"),
                hash_progress=report("hash"),
                retries=retries,
                timeout=timeout,
                cancel=cancel,
            )
            if progress:
                progress(item.path, "done", artifact.size_bytes, artifact.size_bytes)
            return artifact

        return run

    return _in_parallel([(item.path, one(item)) for item in items], parallel)


@dataclass(frozen=True)
class DownloadItem:
    """One file of a multi-file download: the artifact, where it goes, the digest it must have
    (from the version's manifest; None to trust the artifact's own)."""

    artifact_name: str
    dest_path: Path
    expected_sha256: str | None = None


def download_files(
    channel_or_stub: StubOrChannel,
    items: Sequence[DownloadItem],
    *,
    parallel: int = DEFAULT_PARALLEL_FILES,
    direct: bool = False,
    streams: int = DEFAULT_STREAMS,
    progress: FilesProgress | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: float | None = client.DEFAULT_TIMEOUT_S,
) -> list[artifact_pb2.Artifact]:
    """Download several artifacts, `parallel` at a time, each verified; the Artifacts in order.

    With `direct` each file is read straight from the object store through a presigned URL
    (see `download_direct`); otherwise through the Download stream (see `download_file`, whose
    `streams` ranges apply to each large file). Every file is checked against its SHA-256 and
    renamed into place only then. If some files fail, the rest still complete and
    TransfersFailed (or, for a single file, its own error) is raised.
    """
    stub = artifact_stub(channel_or_stub)

    def one(item: DownloadItem) -> Callable[[threading.Event], artifact_pb2.Artifact]:
        def run(cancel: threading.Event) -> artifact_pb2.Artifact:
            report = _phase_progress(progress, item.artifact_name)("download")
            if direct:
                artifact = download_direct(
                    stub,
                    item.artifact_name,
                    item.dest_path,
                    progress=report,
                    retries=retries,
                    expected_sha256=item.expected_sha256,
                    timeout=timeout,
                    cancel=cancel,
                )
            else:
                artifact = download_file(
                    stub,
                    item.artifact_name,
                    item.dest_path,
                    streams=streams,
                    progress=report,
                    retries=retries,
                    expected_sha256=item.expected_sha256,
                    cancel=cancel,
                )
            if progress:
                progress(item.artifact_name, "done", artifact.size_bytes, artifact.size_bytes)
            return artifact

        return run

    return _in_parallel([(item.artifact_name, one(item)) for item in items], parallel)


def _phase_progress(progress: FilesProgress | None, path: str) -> Callable[[str], Progress | None]:
    def for_phase(phase: str) -> Progress | None:
        if progress is None:
            return None
        report = progress
        return lambda done, total: report(path, phase, done, total)

    return for_phase


# --- direct reads from the object store -----------------------------------------------------

DIRECT_CONNECT_TIMEOUT_S = 10.0
DIRECT_READ_TIMEOUT_S = 60.0


def download_direct(
    channel_or_stub: StubOrChannel,
    artifact_name: str,
    dest_path: str | os.PathLike[str],
    *,
    lifetime_s: float | None = None,
    progress: Progress | None = None,
    retries: int = DEFAULT_RETRIES,
    expected_sha256: str | None = None,
    timeout: float | None = client.DEFAULT_TIMEOUT_S,
    cancel: threading.Event | None = None,
) -> artifact_pb2.Artifact:
    """Download an artifact straight from the object store through a presigned URL.

    Asks the registry for the URL (GetArtifactDownloadUrl, viewer role), then GETs the bytes
    over HTTP(S) into a temporary file beside `dest_path`, hashing them as they arrive. A
    broken connection resumes with a `Range` request; an expired URL is asked for again. The
    bytes must have the registry's size and SHA-256 (and `expected_sha256`, e.g. from the
    manifest) before the file is renamed into place: ChecksumMismatch otherwise, and, as on
    any failure, no file is left behind. The URL is never logged nor put in an error.
    Returns the Artifact (from GetArtifact, so it carries the same fields as `download_file`).
    """
    import urllib3  # only direct reads need it (it comes with the store SDK the server uses)

    stub = artifact_stub(channel_or_stub)
    retry = _Retry(retries)
    request = artifact_service_pb2.GetArtifactDownloadUrlRequest(name=artifact_name)
    if lifetime_s is not None:
        request.lifetime.FromTimedelta(timedelta(seconds=lifetime_s))
    artifact: artifact_pb2.Artifact = _unary_with_retry(
        stub.GetArtifact,
        artifact_service_pb2.GetArtifactRequest(name=artifact_name),
        timeout,
        retry,
    )
    dest = Path(dest_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.part"
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=DIRECT_CONNECT_TIMEOUT_S, read=DIRECT_READ_TIMEOUT_S),
        retries=False,
    )
    digest = hashlib.sha256()
    pos = 0
    try:
        with open(tmp, "xb") as f:
            url: artifact_service_pb2.GetArtifactDownloadUrlResponse | None = None
            while pos < artifact.size_bytes or url is None:
                if url is None or _expired(url):
                    url = _unary_with_retry(stub.GetArtifactDownloadUrl, request, timeout, retry)
                    if (url.sha256, url.size_bytes) != (artifact.sha256, artifact.size_bytes):
                        raise TransferError(f"{artifact_name} changed during the download")
                try:
                    _read_direct(http, url, artifact_name, f, pos, digest, progress, cancel)
                    retry.progressed()
                except _UrlRefused:
                    url = None  # expired or revoked: a fresh one, within the retries
                    retry.failed(TransferError(f"{artifact_name}: the store refused the URL"))
                except urllib3.exceptions.HTTPError:  # the network; a local OSError is final
                    retry.failed(
                        TransferError(
                            f"{artifact_name}: reading from the store failed at byte {pos}"
                        )
                    )
                # What reached the file (and the digest, in step with it) is kept: resume there.
                pos = f.tell()
                if pos >= artifact.size_bytes:
                    break
            f.flush()
            os.fsync(f.fileno())
        if pos != artifact.size_bytes:
            raise TransferError(f"{artifact_name}: got {pos} bytes, expected {artifact.size_bytes}")
        _verify(artifact, digest.hexdigest(), expected_sha256)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        http.clear()
    return artifact


class _UrlRefused(Exception):
    """The store answered 401/403 to a presigned URL: it expired or was never valid."""


def _expired(url: artifact_service_pb2.GetArtifactDownloadUrlResponse) -> bool:
    # A little early, so that a request does not start on a URL about to lapse.
    return time.time() > url.expire_time.ToSeconds() - 2


def _read_direct(
    http: urllib3.PoolManager,
    url: artifact_service_pb2.GetArtifactDownloadUrlResponse,
    name: str,
    f: BinaryIO,
    pos: int,
    digest: _Hash,
    progress: Progress | None,
    cancel: threading.Event | None = None,
) -> None:
    """GET the bytes from `pos` to the end, appending them to `f` and `digest` chunk by chunk
    (so after a failure `f.tell()` is where to resume)."""
    size = url.size_bytes
    if size == 0:
        return
    headers = {"Range": f"bytes={pos}-"}
    response = http.request("GET", url.url, headers=headers, preload_content=False)
    try:
        if response.status in (401, 403):
            raise _UrlRefused
        if response.status != 206 and not (response.status == 200 and pos == 0):
            raise TransferError(f"{name}: the store answered HTTP {response.status}")
        while pos < size:
            if cancel is not None and cancel.is_set():
                raise TransferError(f"{name}: download cancelled")
            data = response.read(CHUNK_SIZE)
            if not data:
                break
            data = data[: size - pos]
            f.write(data)
            digest.update(data)
            pos += len(data)
            if progress:
                progress(pos, size)
    except BaseException:
        response.close()  # unread bytes stay on this connection: never reuse it
        raise
    response.release_conn()
