"""The S3 object store, over the (synchronous) minio SDK.

minio blocks, so every call made from async code goes through a small bounded thread pool
(run_blocking, run_read): the event loop never waits on the network. Failures leave this module as
domain errors whose messages name the endpoint and bucket, never a credential.

Every call has a deadline (`deadline_s`, shortened to the caller's own gRPC deadline): a store
that hangs (stopped, partitioned) costs a caller UNAVAILABLE after at most that long, never
minutes. The socket timeouts equal the deadline and a request is never retried after it was
sent, so the thread of a call given up on also ends by itself soon after.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import urllib3
from minio import Minio
from minio.credentials.credentials import Credentials
from minio.datatypes import Part
from minio.error import MinioException, S3Error
from minio.helpers import DictType

from modelregistry.domain.deadlines import time_left
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import DataLoss, FailedPrecondition, NotFound, Unavailable

_P = ParamSpec("_P")
_T = TypeVar("_T")

# Part uploads are bound by the store, not by threads (PERF-NOTES: 2-3 threads suffice).
DEFAULT_MAX_WORKERS = 3
# Reads of download streams block a thread per chunk; they get their own pool so that a slow
# reader never queues behind part uploads.
READ_WORKERS = 16
READ_CHUNK_BYTES = 1 << 20
# S3 error codes that mean "someone already made this bucket", which is what we wanted.
_BUCKET_ALREADY_THERE = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


_SDK_FAILURES = (MinioException, urllib3.exceptions.HTTPError, OSError)
# The default limit on one store call, queueing for a thread included (MODELREG_S3_DEADLINE_S).
DEFAULT_DEADLINE_S = 15.0


class StoreDeadlineExceeded(Unavailable):
    """The store did not answer in time. The blocking call may still be running on its
    thread (`still_running`): memory it reads must not be reused before that ends."""

    still_running: asyncio.Future[Any] | None = None


@dataclass(frozen=True)
class PendingUpload:
    """An incomplete multipart upload: its object key, S3 upload id and start time."""

    key: str
    upload_id: str
    initiated: datetime | None


_CONTENT_SHA256 = "x-amz-content-sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class _PayloadTrustingMinio(Minio):
    """minio that sends a request body without hashing it when the caller asks so.

    minio hashes every body it sends: SHA-256 for the SigV4 payload signature over http,
    MD5 for Content-MD5 over https (2.4x slower than SHA-256 here). The service already
    hashes every byte of an upload once, for the artifact's digest; a second pass per part
    cost more server CPU than everything else on the upload path. SigV4 allows signing the
    headers alone (`x-amz-content-sha256: UNSIGNED-PAYLOAD`, as the AWS SDKs do over
    https): a request carrying that header is signed so and its body left unhashed.

    What still guards a part: its length (signed), TLS over https, the artifact's SHA-256
    against the declared digest, and clients checking downloads against the manifest. A
    per-part CRC32C (`x-amz-checksum-crc32c`, which SeaweedFS verifies) is left out: AWS
    refuses a part checksum unless CreateMultipartUpload named the algorithm, and then
    CompleteMultipartUpload needs every part's checksum, which the session does not keep.
    """

    def _build_headers(
        self,
        host: str,
        headers: DictType | None = None,
        body: bytes | None = None,
        creds: Credentials | None = None,
    ) -> tuple[DictType, datetime]:
        if headers is None or headers.get(_CONTENT_SHA256) != UNSIGNED_PAYLOAD:
            return super()._build_headers(host, headers, body, creds)
        # No body handed on: minio then hashes nothing (an empty string, over http).
        built, date = super()._build_headers(host, headers, None, creds)
        built[_CONTENT_SHA256] = UNSIGNED_PAYLOAD
        if body:
            built["Content-Length"] = str(len(body))
        return built, date


class ObjectStore:
    """One bucket on one S3 endpoint."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str = "us-east-1",
        ca_file: str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        connect_timeout_s: float = 5.0,
        deadline_s: float = DEFAULT_DEADLINE_S,
        retries: int = 3,
        public_endpoint: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.public_endpoint = public_endpoint
        self.bucket = bucket
        self.secure = secure
        self.deadline_s = deadline_s
        self._client = _PayloadTrustingMinio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_pool(
                max_workers + READ_WORKERS + 1,
                min(connect_timeout_s, deadline_s),
                deadline_s,
                retries,
                ca_file,
            ),
        )
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="object-store"
        )
        self._read_executor = ThreadPoolExecutor(
            max_workers=READ_WORKERS, thread_name_prefix="object-store-read"
        )
        # Health probes on a thread of their own: probes of a hung store must not take the
        # threads that uploads need, nor pile up (a probe waits for the one before).
        self._ping_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-ping")
        self._lingering: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return f"ObjectStore(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # -- synchronous API (for startup code and worker threads) --------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists; a concurrent creator is not an error."""
        with self._translated_errors("create the bucket"):
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as error:
                if error.code not in _BUCKET_ALREADY_THERE:
                    raise

    def ping(self) -> None:
        """Raise Unavailable unless the store answers and the bucket exists.

        An authenticated request, so bad credentials fail here rather than on first upload.
        """
        with self._translated_errors("reach the bucket"):
            exists = self._client.bucket_exists(self.bucket)
        if not exists:
            raise Unavailable(
                message=f"S3 bucket {self.bucket!r} does not exist at {self.endpoint}",
                metadata={"endpoint": self.endpoint, "bucket": self.bucket},
            )

    # -- multipart uploads and objects (blocking: call through run_blocking) ----------------

    def create_multipart(self, key: str) -> str:
        with self._translated_errors("start an upload in"):
            return self._client._create_multipart_upload(self.bucket, key, {})

    def upload_part(self, key: str, upload_id: str, number: int, data: memoryview) -> str:
        """Store one part, signed without hashing its bytes: the caller hashes them once, for
        the artifact's digest (see _PayloadTrustingMinio)."""
        headers: DictType = {_CONTENT_SHA256: UNSIGNED_PAYLOAD}
        with self._translated_errors("store a part in"):
            return self._client._upload_part(
                self.bucket,
                key,
                data,  # type: ignore[arg-type]
                headers,
                upload_id,
                number,
            )

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        with self._translated_errors("complete an upload in"):
            self._client._complete_multipart_upload(
                self.bucket, key, upload_id, [Part(number, etag) for number, etag in parts]
            )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Release an upload's parts; one already gone is fine."""
        try:
            with self._translated_errors("abort an upload in"):
                self._client._abort_multipart_upload(self.bucket, key, upload_id)
        except (FailedPrecondition, NotFound):
            pass

    def object_size(self, key: str) -> int | None:
        """The stored object's size, or None if there is none."""
        try:
            with self._translated_errors("look up an object in"):
                stat = self._client.stat_object(self.bucket, key)
        except DataLoss:
            return None
        return stat.size

    def remove(self, key: str) -> None:
        with self._translated_errors("delete an object in"):
            self._client.remove_object(self.bucket, key)

    def object_keys(self, prefix: str) -> list[str]:
        """The key of every object under `prefix`."""
        with self._translated_errors("list"):
            return [
                o.object_name
                for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if o.object_name is not None
            ]

    def multipart_uploads(self, prefix: str) -> list[PendingUpload]:
        """Every incomplete multipart upload under `prefix`."""
        found: list[PendingUpload] = []
        key_marker: str | None = None
        upload_id_marker: str | None = None
        with self._translated_errors("list the uploads in"):
            while True:
                page = self._client._list_multipart_uploads(
                    self.bucket,
                    prefix=prefix,
                    key_marker=key_marker,
                    upload_id_marker=upload_id_marker,
                    max_uploads=1000,
                )
                found.extend(
                    PendingUpload(u.object_name, u.upload_id, u.initiated_time)
                    for u in page.uploads
                    if u.upload_id is not None
                )
                if not page.is_truncated or not page.uploads:
                    return found
                # minio drops NextUploadIdMarker; the last entry is the same marker.
                key_marker, upload_id_marker = found[-1].key, found[-1].upload_id

    def read_range(self, key: str, offset: int, length: int) -> RangeReader:
        """An open reader of `length` bytes from `offset` (length > 0)."""
        with self._translated_errors("read from"):
            response = self._client.get_object(self.bucket, key, offset=offset, length=length)
        return RangeReader(self, response)

    def presigned_get_url(self, key: str, expires_s: int, public_endpoint: str = "") -> str:
        """A URL that lets whoever holds it GET `key` for `expires_s` seconds, signed for
        `public_endpoint` ([http[s]://]host:port, how clients reach the store; this store's
        endpoint when empty). Signing is local computation: no request reaches the store."""
        from datetime import timedelta

        signer: Minio = self._client
        public_endpoint = public_endpoint or self.public_endpoint  # MODELREG_S3_PUBLIC_ENDPOINT
        if public_endpoint:
            scheme, _, host = public_endpoint.rstrip("/").rpartition("://")
            signer = Minio(
                host,
                credentials=self._client._provider,
                secure=(scheme == "https") if scheme else self.secure,
                region=self._client._base_url.region,
            )
        with self._translated_errors("sign a URL for"):
            return signer.presigned_get_object(
                self.bucket, key, expires=timedelta(seconds=expires_s)
            )

    # -- asynchronous API ------------------------------------------------------------------

    async def ensure_bucket_async(self) -> None:
        await self.run_blocking(self.ensure_bucket)

    async def ping_async(self) -> None:
        await self._within_deadline(self._ping_executor, "reach the bucket", self.ping)

    async def create_multipart_async(self, key: str) -> str:
        return await self.run_blocking(self.create_multipart, key)

    async def upload_part_async(
        self, key: str, upload_id: str, number: int, data: memoryview
    ) -> str:
        """The part's etag. On StoreDeadlineExceeded the call may still be reading `data`."""
        return await self.run_blocking(self.upload_part, key, upload_id, number, data)

    async def complete_multipart_async(
        self, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        await self.run_blocking(self.complete_multipart, key, upload_id, parts)

    async def abort_multipart_async(self, key: str, upload_id: str) -> None:
        await self.run_blocking(self.abort_multipart, key, upload_id)

    async def object_size_async(self, key: str) -> int | None:
        return await self.run_blocking(self.object_size, key)

    async def remove_async(self, key: str) -> None:
        await self.run_blocking(self.remove, key)

    async def object_keys_async(self, prefix: str) -> list[str]:
        return await self.run_blocking(self.object_keys, prefix)

    async def multipart_uploads_async(self, prefix: str) -> list[PendingUpload]:
        return await self.run_blocking(self.multipart_uploads, prefix)

    async def run_blocking(
        self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run a blocking call on this store's bounded pool, within the deadline."""
        call = functools.partial(function, *args, **kwargs)
        return await self._within_deadline(self._executor, "reach", call)

    async def run_read(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a blocking read on the read pool, within the deadline."""
        call = functools.partial(function, *args, **kwargs)
        return await self._within_deadline(self._read_executor, "read from", call)

    async def _within_deadline(
        self, executor: ThreadPoolExecutor, action: str, call: Callable[[], _T]
    ) -> _T:
        timeout = time_left(self.deadline_s)
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(executor, call)
        try:
            # Shielded: a thread cannot be stopped, so its future must outlive this wait.
            return await asyncio.wait_for(asyncio.shield(running), timeout)
        except TimeoutError:
            running.add_done_callback(_consume_outcome)
            error = StoreDeadlineExceeded(
                message=f"could not {action} {self.bucket!r} at S3 endpoint {self.endpoint}: "
                f"no answer within {timeout:g} s; retry with backoff",
                metadata={"endpoint": self.endpoint, "bucket": self.bucket},
            )
            error.still_running = running
            raise error from None
        except asyncio.CancelledError:
            running.add_done_callback(_consume_outcome)
            raise

    async def stream_range(
        self, key: str, offset: int, length: int, read_ahead: int
    ) -> AsyncIterator[bytes]:
        """The bytes of a range in READ_CHUNK_BYTES chunks, read ahead by up to `read_ahead`.

        One read thread pulls the object continuously while the caller sends what it has, so
        the store and the network overlap; a full queue stops the thread (backpressure).
        """
        if length == 0:
            return
        reader = await self.run_read(self.read_range, key, offset, length)
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[bytes | Exception] = asyncio.Queue(read_ahead)
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                try:
                    item: bytes | Exception = reader.read_chunk()
                except Exception as exc:
                    item = exc
                asyncio.run_coroutine_threadsafe(chunks.put(item), loop).result()
                if not item or isinstance(item, Exception):
                    return

        pumping = loop.run_in_executor(self._read_executor, pump)
        try:
            while True:
                try:
                    item = await asyncio.wait_for(chunks.get(), time_left(self.deadline_s))
                except TimeoutError:
                    raise self._unavailable("read from", "no data within the deadline") from None
                if isinstance(item, Exception):
                    raise item
                if not item:
                    return
                yield item
        finally:
            stop.set()
            reader.close()  # ends a read in progress, where the store still answers
            if not pumping.done():
                # A pump stuck on a hung store ends at its socket timeout; until then keep
                # its queue open, without holding up the caller.
                lingering = asyncio.ensure_future(_drain_until_done(pumping, chunks))
                self._lingering.add(lingering)
                lingering.add_done_callback(self._lingering.discard)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._read_executor.shutdown(wait=True, cancel_futures=True)
        self._ping_executor.shutdown(wait=True, cancel_futures=True)

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translated_errors(self, action: str) -> Iterator[None]:
        """Turn SDK failures into Unavailable with a message safe to show anyone."""
        try:
            yield
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                raise FailedPrecondition(
                    "the upload's stored parts were released (the session was aborted or "
                    "collected); start a new upload",
                    reason=ErrorReason.UPLOAD_RELEASED,
                ) from exc
            if exc.code == "NoSuchKey":
                raise DataLoss(
                    f"an object the registry references is missing from bucket {self.bucket!r}",
                    reason=ErrorReason.OBJECT_MISSING,
                ) from exc
            if exc.code in ("InvalidPart", "InvalidPartOrder"):
                raise DataLoss(
                    "the stored parts of this upload do not match what was recorded; "
                    "abort it and upload again",
                    reason=ErrorReason.PARTS_MISMATCH,
                ) from exc
            raise self._unavailable(action, exc.code or "S3Error") from exc
        except _SDK_FAILURES as exc:
            raise self._unavailable(action, "no answer (refused or timed out)") from exc

    def _unavailable(self, action: str, detail: str) -> Unavailable:
        return Unavailable(
            message=f"could not {action} {self.bucket!r} at S3 endpoint {self.endpoint}: {detail}",
            metadata={"endpoint": self.endpoint, "bucket": self.bucket},
        )


class RangeReader:
    """A ranged GET being read in chunks; close it when done, also on error."""

    def __init__(self, store: ObjectStore, response: urllib3.BaseHTTPResponse) -> None:
        self._store = store
        self._response = response

    def read_chunk(self) -> bytes:
        """Up to READ_CHUNK_BYTES; empty at the end."""
        with self._store._translated_errors("read from"):
            return self._response.read(READ_CHUNK_BYTES)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._response.close()
            self._response.release_conn()


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    """Retrieve the result of a call nobody waits for any more (no 'never retrieved' noise)."""
    if not future.cancelled():
        future.exception()


async def _drain_until_done(pumping: asyncio.Future[None], chunks: asyncio.Queue[Any]) -> None:
    while not pumping.done():
        while not chunks.empty():
            chunks.get_nowait()  # unblock a pump waiting for room
        await asyncio.wait([pumping], timeout=0.05)


def _http_pool(
    max_workers: int,
    connect_timeout_s: float,
    read_timeout_s: float,
    retries: int,
    ca_file: str | None = None,
) -> urllib3.PoolManager:
    # minio's default pool waits 5 minutes to connect and retries 5 times: far too long for
    # a health probe to notice that the store is down. A request that reached the store is
    # not retried on a read timeout (read=0): a hung store would otherwise cost every call
    # several read timeouts, and the deadline allows one.
    return urllib3.PoolManager(
        maxsize=max_workers + 2,
        timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
        retries=urllib3.Retry(
            total=retries,
            read=0,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
        ),
        # https: the store's certificate is checked against ca_file, else the system's CAs.
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_file,
    )
