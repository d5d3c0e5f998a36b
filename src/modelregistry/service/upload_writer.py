"""One Write stream of an upload: bytes in, 16 MiB parts out to S3, progress into PostgreSQL.

Parts are assembled in a few preallocated buffers. While every buffer is busy the stream stops
reading, and gRPC flow control carries that back to the client: memory per upload stays at
BUFFERS x part size whatever the file size. Each part is hashed in order on a worker thread,
stored in S3 alongside the next ones, then recorded (committed size, part etag, SHA-256
state) strictly in order, so the session in PostgreSQL always describes a durable prefix
that any replica can resume from.

    client ─► write() ─ fills a buffer ─ full ─► _submit(n) ─► task _store_part(n):
                 ▲                                   1. hash n on a thread   (after hash n-1:
                 │                                      the `hashed` futures chain)
                 │ _buffer(): a free buffer,         2. PUT part n to S3     (in parallel
                 │ or the first part's failure          with n-1 and n+1, within the deadline)
                 └──── buffer back ◄──────────────── 3. record n in PostgreSQL (after record n-1:
                                                        the `recorded` futures chain)

A failure anywhere in part n fails `recorded` n, so every later record fails too and nothing
is recorded out of order; the first failure also wakes write(), which ends the stream with
it. The paths, each with the test that holds it (tests/integration, tests/faults):

- a bad message (upload id, offset): refused at once, parts in flight still recorded in the
  background (drain_quietly) - test_a_write_at_the_wrong_offset_is_refused_...;
- bytes past the declared size: PastDeclaredSize, the caller aborts the session -
  test_a_declared_digest_or_size_that_does_not_match_leaves_nothing[size_smaller];
- a message after `finish`: refused before the short last part is stored -
  test_a_message_after_finish_is_refused_and_nothing_is_truncated;
- S3 refuses or is down: UNAVAILABLE - test_s3_stopped_mid_upload_is_unavailable_...;
- S3 hangs: UNAVAILABLE at the deadline; the buffer waits for its thread -
  test_a_hung_store_gives_unavailable_within_the_deadline_and_nothing_is_lost;
- PostgreSQL fails a record: UNAVAILABLE, the prefix recorded so far stands -
  test_resume_right_after_postgres_restarts_goes_through_at_once;
- a second stream while this one lives: refused at its claim (UPLOAD_BUSY) -
  test_a_second_stream_on_a_session_being_written_is_aborted;
- another stream took the session after this one's lease lapsed: UPLOAD_CLAIM_LOST at the
  next record (no test: it needs this writer stalled for LEASE_S while alive);
- the client goes away: the handler is cancelled, parts in flight drain in the background,
  the claim is released - test_a_stream_broken_at_a_random_offset_resumes_...;
- the server dies: its claim lapses within LEASE_S -
  test_resume_right_after_the_server_is_sigkilled_goes_through_at_once.

Nor has a hashing thread failing: it cannot be made to fail without a mock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from modelregistry.domain.artifact_formats import summarize
from modelregistry.domain.artifacts import MAX_MESSAGE_DATA_BYTES, MAX_PARTS, UploadSession
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PreconditionViolation,
)
from modelregistry.hashing import ResumableSha256
from modelregistry.storage import artifacts_store
from modelregistry.storage.database import Database
from modelregistry.storage.object_store import ObjectStore

# One buffer filling while two parts are stored: PERF-NOTES found 3-4 parts in flight enough
# to keep the store busy.
BUFFERS = 3
T = TypeVar("T")
# How long a stream's claim on a session holds unrenewed. A living writer renews it every
# RENEW_EVERY_S (see ClaimKeeper), so only a dead one (SIGKILLed server, lost PostgreSQL
# connection) lets it lapse, and its successor waits at most this long. A lease, not a
# session advisory lock: a lock lives as long as its connection, which a partitioned
# server's half-open TCP connection keeps for hours.
LEASE_S = 2.0
RENEW_EVERY_S = LEASE_S / 4


class BufferPool:
    """Part buffers shared by the uploads of this process.

    Allocated on demand and reused, so memory stays at the high-water mark of concurrent
    uploads (at most BUFFERS per upload) instead of churning 16 MiB allocations, which the
    C allocator would keep anyway.
    """

    def __init__(self, max_idle: int) -> None:
        self._idle: dict[int, list[bytearray]] = {}
        self._max_idle = max_idle

    def take(self, size: int) -> bytearray:
        idle = self._idle.get(size)
        return idle.pop() if idle else bytearray(size)

    def give(self, buffer: bytearray) -> None:
        idle = self._idle.setdefault(len(buffer), [])
        if len(idle) < self._max_idle:
            idle.append(buffer)


@dataclass(frozen=True)
class WriteChunk:
    upload_id: str
    offset: int
    data: bytes
    finish: bool


Summary = tuple[str, dict[str, str]]
Hashed = tuple[bytes, Summary | None]


class PastDeclaredSize(InvalidArgument):
    """The stream carries more bytes than StartUpload declared. Like too few bytes at
    `finish`, the upload cannot end well: the caller aborts the session."""


def _write_after_finish(session_id: str, at: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"a message followed the one with `finish` at offset {at}: the file was not "
        f"committed, so no byte is silently dropped; upload {session_id} stays open: ask "
        "QueryUpload where to resume, and end the stream after the message with `finish`",
        reason=ErrorReason.WRITE_AFTER_FINISH,
    )


def wrong_offset(session_id: str, committed: int, offset: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"write at offset {offset}, but upload {session_id} continues at {committed}; "
        "ask QueryUpload for the committed size and resume there",
        reason=ErrorReason.WRONG_OFFSET,
        metadata={"committed_size": str(committed)},
        violations=[PreconditionViolation("OFFSET", session_id, f"committed size is {committed}")],
    )


class UploadWriter:
    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        hash_executor: Executor,
        buffers: BufferPool,
        session: UploadSession,
        writer_id: str,
    ) -> None:
        self._db = db
        self._store = store
        self._hash_executor = hash_executor
        self._pool = buffers
        self._session = session
        self._writer_id = writer_id
        self._hasher = ResumableSha256.from_state(session.hash_state, session.committed_size)
        self._next_part = len(session.parts) + 1
        self._free: asyncio.Queue[bytearray] = asyncio.Queue()
        self._allocated = 0
        self._parts: list[asyncio.Task[None]] = []
        self._hashed: asyncio.Future[Hashed] | None = None
        self._recorded: asyncio.Future[None] | None = None
        # The first part that failed: the stream ends with its error at once, rather than
        # reading on into parts that cannot be recorded.
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()

    @property
    def session(self) -> UploadSession:
        """The session as recorded so far (committed size, parts, summary)."""
        return self._session

    @property
    def hasher(self) -> ResumableSha256:
        return self._hasher

    async def write(self, first: WriteChunk, rest: AsyncIterator[WriteChunk]) -> bool:
        """Store every byte of the stream; True if it ended with `finish`."""
        part_size = self._session.part_size
        buffer = await self._buffer()
        fill = 0
        position = self._session.committed_size
        chunk: WriteChunk | None = first
        while chunk is not None:
            self._raise_failure()
            self._check(chunk, position)
            view = memoryview(chunk.data)
            while view.nbytes:
                taken = min(view.nbytes, part_size - fill)
                buffer[fill : fill + taken] = view[:taken]
                fill += taken
                position += taken
                view = view[taken:]
                if fill == part_size:
                    self._submit(buffer, fill, position)
                    buffer, fill = await self._buffer(), 0
            if chunk.finish:
                # Only the last part may be short: make sure this is the end before storing
                # it, so that a refused stream leaves a session that can still grow.
                if await anext(rest, None) is not None:
                    self._free.put_nowait(buffer)
                    raise _write_after_finish(session_id=self._session.id, at=position)
                if fill or self._next_part == 1:
                    self._submit(buffer, fill, position)  # the last part may be short or empty
                await self.drain()
                return True
            chunk = await anext(rest, None)
        await self.drain()
        return False

    def _check(self, chunk: WriteChunk, position: int) -> None:
        session = self._session
        if chunk.upload_id != session.id:
            raise InvalidArgument.for_field(
                "upload_id", "every message of a Write stream must name the same upload"
            )
        if chunk.offset != position:
            raise wrong_offset(session.id, session.committed_size, chunk.offset)
        if len(chunk.data) > MAX_MESSAGE_DATA_BYTES:
            raise InvalidArgument.for_field(
                "data", f"at most {MAX_MESSAGE_DATA_BYTES} bytes per message (1 MiB is best)"
            )
        end = position + len(chunk.data)
        if session.declared_size is not None and end > session.declared_size:
            raise PastDeclaredSize(
                message=f"data: the upload declared {session.declared_size} bytes, this write "
                f"goes to {end}; nothing was stored, start again",
                violations=[FieldViolation("data", "goes past the declared size_bytes")],
            )

    async def _buffer(self) -> bytearray:
        self._raise_failure()
        if self._free.empty() and self._allocated < BUFFERS:
            self._allocated += 1
            return self._pool.take(self._session.part_size)
        # All busy: stop reading until a part is stored, or one fails.
        getting = asyncio.ensure_future(self._free.get())
        failing = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({getting, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failing.cancel()
            getting.cancel()
        if getting.done() and not getting.cancelled():
            buffer = getting.result()
            if self._failure is None:
                return buffer
            self._free.put_nowait(buffer)
        self._raise_failure()
        raise AssertionError("unreachable: woken by neither a buffer nor a failure")

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def return_buffers(self) -> None:
        """Give the buffers back to the pool once no part uses them."""
        while not self._free.empty():
            self._pool.give(self._free.get_nowait())

    def _submit(self, buffer: bytearray, fill: int, end: int) -> None:
        number = self._next_part
        if number > MAX_PARTS:
            raise InvalidArgument.for_field(
                "data", "the file outgrew 10,000 parts: declare its size at StartUpload"
            )
        self._next_part += 1
        previous_hashed, previous_recorded = self._hashed, self._recorded
        loop = asyncio.get_running_loop()
        self._hashed, self._recorded = loop.create_future(), loop.create_future()
        self._parts.append(
            asyncio.create_task(
                self._store_part(
                    number,
                    buffer,
                    fill,
                    end,
                    previous_hashed,
                    previous_recorded,
                    self._hashed,
                    self._recorded,
                )
            )
        )

    async def _store_part(
        self,
        number: int,
        buffer: bytearray,
        fill: int,
        end: int,
        previous_hashed: asyncio.Future[Hashed] | None,
        previous_recorded: asyncio.Future[None] | None,
        hashed: asyncio.Future[Hashed],
        recorded: asyncio.Future[None],
    ) -> None:
        data = memoryview(buffer)[:fill]
        try:
            state, summary = await _settle(
                hashed, self._hash_in_order(number, data, previous_hashed)
            )
            etag = await self._store.upload_part_async(
                self._session.object_key, self._session.s3_upload_id, number, data
            )
        except BaseException as exc:
            _fail(recorded, exc)
            if self._failure is None and not isinstance(exc, asyncio.CancelledError):
                self._failure = exc
                self._failed.set()
            still_running = getattr(exc, "still_running", None)
            if still_running is not None:
                # Given up on, the store call may still be reading this buffer on its thread:
                # it becomes free when that call ends, not now.
                still_running.add_done_callback(lambda _: self._free.put_nowait(buffer))
                raise
            self._free.put_nowait(buffer)
            raise
        # The bytes are in S3: the buffer can take the next part while this one waits its
        # turn to be recorded.
        self._free.put_nowait(buffer)
        await _settle(
            recorded, self._record_in_order(number, etag, end, state, summary, previous_recorded)
        )

    async def _hash_in_order(
        self, number: int, data: memoryview, previous: asyncio.Future[Hashed] | None
    ) -> Hashed:
        if previous is not None:
            await asyncio.shield(previous)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._hash_executor, self._hasher.update, data)
        summary = None
        if number == 1:  # parsing a header is CPU work too: keep it off the event loop
            session = self._session
            summary = await loop.run_in_executor(
                self._hash_executor, summarize, data, session.path, session.declared_size
            )
        return self._hasher.state(), summary

    async def _record_in_order(
        self,
        number: int,
        etag: str,
        end: int,
        state: bytes,
        summary: Summary | None,
        previous: asyncio.Future[None] | None,
    ) -> None:
        if previous is not None:
            await asyncio.shield(previous)
        summary = summary or self._session.summary
        async with self._db.connection() as conn:
            recorded = await artifacts_store.record_part(
                conn,
                self._session.id,
                self._writer_id,
                LEASE_S,
                (number, etag),
                end,
                state,
                summary,
            )
        if not recorded:
            raise Aborted(
                f"upload {self._session.id} was taken over by another stream or ended; "
                "ask QueryUpload where to resume",
                reason=ErrorReason.UPLOAD_CLAIM_LOST,
            )
        self._session.parts.append((number, etag))
        self._session.committed_size = end
        self._session.hash_state = state
        self._session.summary = summary

    async def drain(self) -> None:
        """Wait for every submitted part; the first failure is raised."""
        parts, self._parts = self._parts, []
        if not parts:
            return
        results = await asyncio.gather(*parts, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def in_flight(self) -> list[asyncio.Task[None]]:
        return list(self._parts)


def _fail(future: asyncio.Future[T], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # mark retrieved: a later part may never look


async def _settle(future: asyncio.Future[T], work: Awaitable[T]) -> T:
    """Resolve `future` with the outcome of `work` (so the next part can wait on it)."""
    try:
        result = await work
    except BaseException as exc:
        _fail(future, exc)
        raise
    if not future.done():
        future.set_result(result)
    return result


async def drain_quietly(writer: UploadWriter, then: Callable[[], Awaitable[None]]) -> None:
    """Let parts already in flight finish (their bytes count), then run `then`."""
    with contextlib.suppress(BaseException):
        await asyncio.gather(*writer.in_flight(), return_exceptions=True)
    writer.return_buffers()
    with contextlib.suppress(Exception):
        await then()


class ClaimKeeper:
    """Renews a writer's claim on its session until stopped."""

    def __init__(self, db: Database, upload_id: str, writer_id: str) -> None:
        self._db = db
        self._upload_id = upload_id
        self._writer_id = writer_id
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while not self._stop.is_set():
            # Wake on the event rather than being cancelled: a query cancelled mid-flight
            # would hand its pool connection back with a cancellation still in progress.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), RENEW_EVERY_S)
            if self._stop.is_set():
                return
            held = True
            with contextlib.suppress(Exception):  # PostgreSQL away: the next beat tries again
                async with self._db.connection() as conn:
                    held = await artifacts_store.renew_claim(
                        conn, self._upload_id, self._writer_id, LEASE_S
                    )
            if not held:
                return  # taken over or ended: recording the next part will say so

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await self._task
