"""The outermost layer every HTTP request passes: request id, structured log line, metrics,
and the last-resort 500 for errors no surface rendered."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import structlog
from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelregistry.http.context import (
    REQUEST_ID_HEADER,
    accepted_request_id,
    principal_of,
    set_request_id,
)
from modelregistry.http.errors import http_error_of, render_json_error

log = structlog.get_logger("modelregistry.http")

# Labelled by route template (`/v2/{name:path}/blobs/{digest}`), never by path: paths carry
# names and digests without bound.
HTTP_TOTAL = Counter(
    "modelreg_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "modelreg_http_request_seconds",
    "HTTP request duration, to the end of the response body",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 300),
)
UNMATCHED_ROUTE = "<unmatched>"
# Probes are polled constantly: their successful answers are counted but not logged.
QUIET_ROUTES = frozenset({"/healthz", "/readyz"})
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The template of the route that serves `scope`, mounts included ("/v2" + "/{name}")."""
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = route_template(route.routes, {**scope, **child_scope})
            return route.path + (inner or "/" + UNMATCHED_ROUTE)
        path: str | None = getattr(route, "path", None)
        return path
    return None


class RequestEdge:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope["headers"])
        incoming = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = accepted_request_id(incoming) or uuid.uuid4().hex
        set_request_id(scope, request_id)
        route = route_template(self.routes, dict(scope)) or UNMATCHED_ROUTE
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        status = 0
        echo = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), echo]
            await send(message)

        failure: str | None = None
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                # An error no surface rendered. Before the status line: a 500 with the
                # request id. Mid-stream: nothing can be said; the connection ends and the
                # client sees a short body (Content-Length tells it so).
                error = http_error_of(exc, request_id)  # logs the stack of an unexpected one
                failure = error.code
                if status == 0:
                    response = render_json_error(Request(scope, receive), error)
                    await response(scope, receive, send_with_id)
            finally:
                self._record(scope, method, route, status or 500, start, request_id, failure)

    def _record(
        self,
        scope: Scope,
        method: str,
        route: str,
        status: int,
        start: float,
        request_id: str,
        failure: str | None,
    ) -> None:
        elapsed = time.perf_counter() - start
        HTTP_TOTAL.labels(method, route, str(status)).inc()
        HTTP_SECONDS.labels(method, route).observe(elapsed)
        if route in QUIET_ROUTES and status < 400 and failure is None:
            return
        log.info(
            "http",
            method=method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 3),
            request_id=request_id,
            principal=principal_of(scope),
            error=failure,
        )
