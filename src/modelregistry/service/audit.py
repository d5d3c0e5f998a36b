"""Use cases of AuditService: listing and following the audit log.

Following: every replica keeps one LISTEN connection on `audit_events` (the numbering trigger
notifies at each commit) and, as a fallback, reads the committed head once a second. Both only
move `_Head`, the last sequence known committed; each watcher then reads the table itself,
`sequence > its cursor` in batches, so a watcher holds at most one batch, a slow one only
falls behind (gRPC flow control stops it between batches), and writers never wait for anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import structlog

from modelregistry.domain.access import Role
from modelregistry.domain.audit import WATCH_BATCH, AuditEvent, AuditFilter
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import Unavailable
from modelregistry.domain.models import CallContext, Page
from modelregistry.domain.page_tokens import (
    decode_cursor,
    next_page,
    page_token_binding,
)
from modelregistry.domain.paging import resolve_page_size
from modelregistry.storage import audit_store
from modelregistry.storage.database import Database, Listener

log = structlog.get_logger("modelregistry.audit")

CHANNEL = "audit_events"
POLL_S = 1.0  # the fallback: how stale a watcher may get while notifications are lost
LISTENER_CHECK_S = 10.0  # how often an idle LISTEN connection proves it is alive
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 10.0
# Watchers' reads share the pool with every other call: however many watchers a commit wakes,
# at most this many of the pool's connections serve them at once, so writers never starve.
WATCH_READS_AT_ONCE = 3


class _Head:
    """The last sequence known committed, and a way to wait for it to move."""

    def __init__(self) -> None:
        self.value = 0
        self.closed = False
        self._moved = asyncio.Event()

    def advance(self, sequence: int) -> None:
        if sequence > self.value:
            self.value = sequence
            self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # One event per move, replaced at once: a waiter that took the old one wakes, and one
        # that comes later waits for the next move.
        self._moved.set()
        self._moved = asyncio.Event()

    async def wait_beyond(self, cursor: int) -> None:
        while self.value <= cursor and not self.closed:
            await self._moved.wait()


def shutting_down(cursor: int) -> Unavailable:
    return Unavailable(
        "the server is shutting down; reconnect (to any replica) with after_sequence set to "
        "the last sequence you received",
        reason=ErrorReason.SHUTTING_DOWN,
        metadata={"after_sequence": str(cursor)},
    )


class AuditService:
    def __init__(self, db: Database, page_key: bytes) -> None:
        self._db = db
        self._page_key = page_key
        self._head = _Head()
        self._tasks: list[asyncio.Task[None]] = []
        self._reads = asyncio.Semaphore(WATCH_READS_AT_ONCE)

    # -- listing ----------------------------------------------------------------------------

    async def list_events(
        self,
        ctx: CallContext,
        audit_filter: AuditFilter,
        after_sequence: int,
        page_size: int,
        page_token: str,
    ) -> Page[AuditEvent]:
        ctx.require(Role.VIEWER, None, "read the audit log")
        limit = resolve_page_size(page_size)
        binding = page_token_binding(
            "ListAuditEvents", str(after_sequence), audit_filter.binding_text(), ""
        )
        cursor = after_sequence
        if page_token:
            (cursor,) = decode_cursor(self._page_key, binding, page_token, int)
        async with self._db.connection() as conn:
            items = await audit_store.list_events(conn, audit_filter, cursor, limit + 1)
        return next_page(items, limit, self._page_key, binding, lambda e: [e.sequence])

    # -- following --------------------------------------------------------------------------

    async def watch(
        self, ctx: CallContext, audit_filter: AuditFilter, after_sequence: int
    ) -> AsyncGenerator[AuditEvent, None]:
        """The matching events after `after_sequence`, in order, then new ones as they commit.

        Ends only with the server (Unavailable) or when the caller goes away (cancelled).
        """
        ctx.require(Role.VIEWER, None, "read the audit log")
        unfiltered = audit_filter == AuditFilter()
        cursor = after_sequence
        while not self._head.closed:
            async with self._reads, self._db.connection() as conn:
                events, head = await audit_store.read_committed(
                    conn, audit_filter, cursor, WATCH_BATCH
                )
            self._head.advance(head)
            for event in events:
                if self._head.closed:
                    break
                if unfiltered and event.sequence != cursor + 1:
                    _report_gap(cursor, event.sequence)
                yield event
                cursor = event.sequence
            else:
                if len(events) < WATCH_BATCH:
                    # Every match up to the head was in this batch: skip what did not match.
                    cursor = max(cursor, head)
                    await self._head.wait_beyond(cursor)
        raise shutting_down(cursor)

    async def start(self) -> None:
        """Begin following commits (called once the server starts)."""
        with contextlib.suppress(Exception):  # the poller retries; watchers read the table
            await self._poll_once()
        self._tasks = [
            asyncio.create_task(self._follow_notifications(), name="audit-listener"),
            asyncio.create_task(self._poll(), name="audit-poller"),
        ]

    async def close(self) -> None:
        """Stop following commits and end every watch (called at shutdown)."""
        self._head.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _on_notify(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self._head.advance(int(payload))

    async def _poll_once(self) -> None:
        async with self._db.connection() as conn:
            self._head.advance(await audit_store.committed_head(conn))

    async def _poll(self) -> None:
        """The fallback for notifications lost while the LISTEN connection was down."""
        failing = False
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self._poll_once()
            except Exception as exc:  # the database is away; keep trying, say so once
                if not failing:
                    log.warning("audit log poll failed", error=type(exc).__name__)
                failing = True
            else:
                failing = False

    async def _follow_notifications(self) -> None:
        delay = RECONNECT_FIRST_S
        lost = False
        while True:
            try:
                listener = await self._db.listen(CHANNEL, self._on_notify)
            except Exception as exc:  # retried with backoff; the poller covers meanwhile
                log.warning(
                    "audit listener cannot connect; polling meanwhile",
                    error=type(exc).__name__,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                lost = True
                continue
            if lost:
                log.info("audit listener reconnected")
            delay = RECONNECT_FIRST_S
            try:
                await self._poll_once()  # what committed while no one listened
                await _until_lost(listener)
            except Exception as exc:
                log.warning("audit listener failed", error=type(exc).__name__)
            finally:
                await listener.close()
            log.warning("audit listener connection lost; reconnecting")
            lost = True


async def _until_lost(listener: Listener) -> None:
    while not listener.lost.is_set():
        try:
            await asyncio.wait_for(listener.lost.wait(), LISTENER_CHECK_S)
        except TimeoutError:
            await listener.ping(LISTENER_CHECK_S / 2)


def _report_gap(cursor: int, sequence: int) -> None:
    # Cannot happen for events numbered by the counter (migration 0005): the read is bounded by
    # the committed head, and every number up to it is committed and visible. Numbers from
    # before that migration may have gaps (rolled-back identity values); they stay gaps.
    log.warning("audit log gap", after=cursor, next=sequence)
