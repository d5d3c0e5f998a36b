"""The error edge of the HTTP surfaces: domain errors to HTTP statuses, one renderer per surface.

Each surface mounts behind an `ErrorEdge` with its own `ErrorRenderer`, which turns an
`HttpError` into the surface's body shape (MLflow JSON, OCI JSON, an HTML page). The status,
the message and the request id are decided here, once, for all of them. Anything that is not
a RegistryError or a routing HTTPException is a bug: the client gets 500 and the request id,
the log gets the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelregistry.domain import errors as de
from modelregistry.http.context import request_id_of

log = structlog.get_logger("modelregistry.http")

# Google's HTTP mapping of the canonical codes (google.rpc.Code); a surface that needs
# another status for a case (MLflow, OCI) looks at HttpError.cause and picks its own.
_STATUSES: dict[type[de.RegistryError], int] = {
    de.InvalidArgument: 400,
    de.NotFound: 404,
    de.AlreadyExists: 409,
    de.FailedPrecondition: 400,
    de.Aborted: 409,
    de.OutOfRange: 400,
    de.DataLoss: 500,
    de.Unavailable: 503,
    de.ResourceExhausted: 429,
    de.Unauthenticated: 401,
    de.PermissionDenied: 403,
}


@dataclass(frozen=True)
class HttpError:
    """What went wrong, decided by the edge; a surface renders it in its own shape."""

    status: int
    # The domain error's reason (MODEL_NOT_FOUND, TOKEN_REQUIRED, ...), or for routing and
    # internal errors the HTTP phrase in upper snake case (NOT_FOUND, METHOD_NOT_ALLOWED,
    # INTERNAL).
    code: str
    # Safe to show: a domain error's own message, or a fixed text for everything else.
    message: str
    request_id: str
    # The domain error itself (its class, violations and metadata), None for routing and
    # internal errors.
    cause: de.RegistryError | None = None
    # Headers the response must carry (Allow on a 405).
    headers: Mapping[str, str] = field(default_factory=dict)


ErrorRenderer = Callable[[Request, HttpError], Response]


def status_of(error: de.RegistryError) -> int:
    for cls in type(error).__mro__:
        status = _STATUSES.get(cls)
        if status is not None:
            return status
    return 500


def internal_message(request_id: str) -> str:
    return f"internal error; report request id {request_id} to the registry's operators"


def http_error_of(exc: Exception, request_id: str) -> HttpError:
    """The HttpError `exc` stands for; an unexpected exception is logged here with its stack."""
    if isinstance(exc, de.RegistryError):
        return HttpError(status_of(exc), exc.reason, exc.message, request_id, cause=exc)
    if isinstance(exc, HTTPException):
        phrase = HTTPStatus(exc.status_code).phrase
        return HttpError(
            exc.status_code,
            phrase.upper().replace(" ", "_").replace("-", "_"),
            phrase,  # never exc.detail: it is whatever the raiser wrote
            request_id,
            headers=dict(exc.headers or {}),
        )
    log.error("unhandled error", request_id=request_id, exc_info=exc)
    return HttpError(500, "INTERNAL", internal_message(request_id), request_id)


def render_json_error(request: Request, error: HttpError) -> Response:
    """The default shape, for the probes and for paths outside every surface."""
    body = {"error": {"code": error.code, "message": error.message, "request_id": error.request_id}}
    return JSONResponse(body, status_code=error.status, headers=dict(error.headers))


class ErrorEdge:
    """ASGI middleware that renders any error raised before the response started.

    An error raised after the status line went out (mid-stream) cannot be reported in the
    body any more; it propagates to the request edge, which logs it and ends the response.
    """

    def __init__(self, app: ASGIApp, render: ErrorRenderer = render_json_error) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            error = http_error_of(exc, request_id_of(scope))
            response = self.render(Request(scope, receive), error)
            await response(scope, receive, send)
