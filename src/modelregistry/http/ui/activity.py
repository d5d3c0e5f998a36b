"""The live audit feed: Server-Sent Events from AuditService.watch (the machinery behind
WatchEvents), so the feed is gap-free and a reconnect resumes after `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelregistry.domain.audit import WATCH_BATCH, AuditEvent
from modelregistry.domain.errors import InvalidArgument, RegistryError
from modelregistry.http.context import services_of
from modelregistry.http.ui.pages import activity_filter
from modelregistry.http.ui.rendering import when
from modelregistry.http.ui.session import SESSION_COOKIE, caller

# How often an idle stream proves the session is still live (a revoked token or a sign-out
# ends the stream within this plus the Authenticator's cache time) and sends a keep-alive.
SESSION_RECHECK_S = 5.0
RETRY_MS = 2000


def _resume_after(request: Request) -> int:
    text = request.headers.get("last-event-id") or request.query_params.get("after", "") or "0"
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidArgument.for_field("Last-Event-ID", f"{text[:20]!r} is not a sequence")
    return int(text)


def _message(event: AuditEvent) -> str:
    data = {
        "sequence": event.sequence,
        "time": when(event.time),
        "principal": event.principal,
        "action": event.action,
        "resource": event.resource,
    }
    return f"id: {event.sequence}\nevent: audit\ndata: {json.dumps(data)}\n\n"


async def activity_events(request: Request) -> Response:
    ctx, _ = await caller(request)
    services = services_of(request)
    audit_filter = activity_filter(request)
    after = _resume_after(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    # Refuse a bad filter or a missing role now, while an error page can still be sent.
    watch = services.audit.watch(ctx, audit_filter, after)

    async def stream() -> AsyncIterator[str]:
        queue: asyncio.Queue[AuditEvent] = asyncio.Queue(maxsize=WATCH_BATCH)

        async def pump() -> None:
            async for event in watch:
                await queue.put(event)

        task = asyncio.create_task(pump())
        try:
            yield f"retry: {RETRY_MS}\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), SESSION_RECHECK_S)
                except TimeoutError:
                    if task.done():
                        return  # the server is shutting down; the browser reconnects
                    try:
                        await services.sessions.resume(session_id)
                    except RegistryError:
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield _message(event)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
