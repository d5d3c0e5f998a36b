"""The S3 object store, over the (synchronous) minio SDK.

minio blocks, so every call made from async code goes through a small bounded thread pool
(`*_async` methods): the event loop never waits on the network. Failures leave this module as
domain errors whose messages name the endpoint and bucket, never a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import MinioException, S3Error

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
        max_workers: int = DEFAULT_MAX_WORKERS,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_pool(
                max_workers + READ_WORKERS, connect_timeout_s, read_timeout_s, retries
            ),
        )
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="object-store"
        )
        self._read_executor = ThreadPoolExecutor(
            max_workers=READ_WORKERS, thread_name_prefix="object-store-read"
        )

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
        with self._translated_errors("store a part in"):
            return self._client._upload_part(self.bucket, key, data, None, upload_id, number)  # type: ignore[arg-type]

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

        signer = self._client
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
        await self.run_blocking(self.ping)

    async def run_blocking(
        self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run a blocking call on this store's bounded pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    async def run_read(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a blocking read on the read pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._read_executor, functools.partial(function, *args, **kwargs)
        )

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
                item = await chunks.get()
                if isinstance(item, Exception):
                    raise item
                if not item:
                    return
                yield item
        finally:
            stop.set()
            reader.close()  # ends a read in progress
            while not pumping.done():
                while not chunks.empty():
                    chunks.get_nowait()  # unblock a pump waiting for room
                await asyncio.wait([pumping], timeout=0.05)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._read_executor.shutdown(wait=True, cancel_futures=True)

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
                    reason="UPLOAD_RELEASED",
                ) from exc
            if exc.code == "NoSuchKey":
                raise DataLoss(
                    f"an object the registry references is missing from bucket {self.bucket!r}",
                    reason="OBJECT_MISSING",
                ) from exc
            if exc.code in ("InvalidPart", "InvalidPartOrder"):
                raise DataLoss(
                    "the stored parts of this upload do not match what was recorded; "
                    "abort it and upload again",
                    reason="PARTS_MISMATCH",
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


def _http_pool(
    max_workers: int, connect_timeout_s: float, read_timeout_s: float, retries: int
) -> urllib3.PoolManager:
    # minio's default pool waits 5 minutes to connect and retries 5 times: far too long for
    # a health probe to notice that the store is down.
    return urllib3.PoolManager(
        maxsize=max_workers + 2,
        timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
        retries=urllib3.Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
        ),
    )
