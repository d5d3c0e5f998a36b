"""OCI's error edge: `{"errors": [{"code", "message", "detail"}]}` with the spec's codes, a
Bearer challenge naming the scope on every 401 (and on a 403 that a new pull token cures), and
request bodies drained before a refusal goes out.

A refused PUT or POST must still have its body read: otherwise the unread bytes are taken for
the next request on that keep-alive connection. Bodies up to DRAIN_LIMIT are read and dropped;
a larger one gets `Connection: close` instead.
"""

from __future__ import annotations

import json
import re

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelregistry.domain import errors as de
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.http.errors import HttpError
from modelregistry.service.oci import PULL_TOKEN_EXPIRED

log = structlog.get_logger("modelregistry.http.oci")

SERVICE = "modelregistry"
TOKEN_PATH = "/v2/token"  # noqa: S105  (a path, not a secret)
CATALOG_SCOPE = "registry:catalog:*"
DRAIN_LIMIT = 64 << 20
PUSH_UNSUPPORTED = ErrorReason.PUSH_UNSUPPORTED
INSUFFICIENT_SCOPE = ErrorReason.INSUFFICIENT_SCOPE
# 403s that a new pull token cures: they carry a challenge too, naming the scope to ask for.
_REFRESH = frozenset({INSUFFICIENT_SCOPE, PULL_TOKEN_EXPIRED})

# Domain reasons whose spec code differs from the status's default.
_CODES = {
    "MODEL_NOT_FOUND": "NAME_UNKNOWN",
    "VERSION_NOT_FOUND": "MANIFEST_UNKNOWN",
    "ALIAS_NOT_FOUND": "MANIFEST_UNKNOWN",
    "VERSION_NOT_READY": "MANIFEST_UNKNOWN",
    "MANIFEST_NOT_FOUND": "MANIFEST_UNKNOWN",
    "MANIFEST_NOT_ACCEPTABLE": "MANIFEST_UNKNOWN",
    "BLOB_NOT_FOUND": "BLOB_UNKNOWN",
    "NAME_INVALID": "NAME_INVALID",
    "DIGEST_INVALID": "DIGEST_INVALID",
    "MANIFEST_INVALID": "MANIFEST_INVALID",
    PUSH_UNSUPPORTED: "UNSUPPORTED",
}
_BY_STATUS = {
    400: "UNSUPPORTED",  # "an invalid set of parameters" in the spec's words
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NOT_FOUND",
    405: "UNSUPPORTED",
    429: "TOOMANYREQUESTS",
}
_REPOSITORY_PATH = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags|referrers)/")
_SCOPE_NAME = re.compile(r"[a-z0-9._/-]{1,255}")


def render_error(request: Request, error: HttpError) -> Response:
    status, code = _status_and_code(error)
    headers = dict(error.headers)
    refreshable = error.cause is not None and error.cause.reason in _REFRESH
    if status == 401 or (status == 403 and refreshable):
        headers["www-authenticate"] = challenge(request, error.cause)
    if status in (401, 403):
        # Reads are not audited; refusals get a line of their own. A 401 is how every pull
        # starts (the challenge), so only a 403 is worth a warning.
        (log.warning if status == 403 else log.info)(
            "oci access refused",
            status=status,
            reason=error.code,
            path=request.url.path,
            request_id=error.request_id,
        )
    body = {
        "errors": [
            {"code": code, "message": error.message, "detail": {"request_id": error.request_id}}
        ]
    }
    return DrainingResponse(
        json.dumps(body).encode(), status_code=status, headers=headers,
        media_type="application/json",
    )  # fmt: skip


def _status_and_code(error: HttpError) -> tuple[int, str]:
    cause = error.cause
    if cause is not None and cause.reason == PUSH_UNSUPPORTED:
        return 405, "UNSUPPORTED"
    if error.status == 404 and cause is None:
        return 404, "NAME_UNKNOWN"  # a path outside the API: no such repository endpoint
    code = _CODES.get(error.code) or _BY_STATUS.get(error.status) or error.code
    return error.status, code


def realm_of(request: Request) -> str:
    """The token endpoint as an absolute URL on the host the client used."""
    return str(request.base_url.replace(path=TOKEN_PATH, query=""))


def challenge(request: Request, cause: de.RegistryError | None) -> str:
    """A Bearer challenge naming the scope the request needs (oras takes it from every 401);
    the token endpoint itself asks for Basic credentials."""
    path = request.url.path
    if path == TOKEN_PATH:
        return f'Basic realm="{SERVICE}"'
    match = _REPOSITORY_PATH.match(path)
    name = match.group(1) if match else ""
    scope = f"repository:{name}:pull" if _SCOPE_NAME.fullmatch(name) else CATALOG_SCOPE
    value = f'Bearer realm="{realm_of(request)}",service="{SERVICE}",scope="{scope}"'
    if cause is not None and cause.reason == INSUFFICIENT_SCOPE:
        value += ',error="insufficient_scope"'
    elif cause is not None and cause.reason == PULL_TOKEN_EXPIRED:
        value += ',error="invalid_token"'
    return value


def unsupported_push() -> de.FailedPrecondition:
    return de.FailedPrecondition(
        "this registry serves models for pulling only: upload files with ArtifactService "
        "(`modelreg upload`), then pull them here by version number, alias or digest",
        reason=PUSH_UNSUPPORTED,
    )


class DrainingResponse(Response):
    """A response that first reads and drops the request's body (see the module doc)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _has_body(scope) and not await _drain(receive):
            self.headers["connection"] = "close"
        await super().__call__(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    if scope.get("method") in ("GET", "HEAD"):
        return False
    for key, value in scope.get("headers", []):
        if key == b"transfer-encoding":
            return True
        if key == b"content-length":
            return value.strip() not in (b"", b"0")
    return False


async def _drain(receive: Receive) -> bool:
    """Read the body to its end; False if it is longer than DRAIN_LIMIT (left unread)."""
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return True  # the client went away
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
        if seen > DRAIN_LIMIT:
            return False
