"""Who is calling over HTTP: the same tokens, the same Authenticator and the same CallContext
as the gRPC edge.

API surfaces call `await authenticate(request)`: it returns the CallContext to pass to the
use cases, or raises `Unauthenticated` (a RegistryError), which the surface's error edge
renders as its own 401 (with the WWW-Authenticate challenge the surface's clients expect).
"""

from __future__ import annotations

import base64
import binascii

import structlog
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from modelregistry.domain.access import Access
from modelregistry.domain.models import CallContext
from modelregistry.http.context import request_id_of, services_of, set_principal

_BEARER = "bearer "
_BASIC = "basic "


def token_from(headers: Headers) -> str | None:
    """The token in `Authorization: Bearer <token>`, or the password of
    `Authorization: Basic` (any user name: OCI clients send the token that way)."""
    value = headers.get("authorization", "")
    if value[: len(_BEARER)].lower() == _BEARER:
        return value[len(_BEARER) :].strip() or None
    if value[: len(_BASIC)].lower() == _BASIC:
        try:
            decoded = base64.b64decode(value[len(_BASIC) :].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, colon, password = decoded.partition(":")
        return password if colon and password else None
    return None


async def authenticate(connection: HTTPConnection) -> CallContext:
    """The caller of this request, from its Authorization header; raises Unauthenticated
    (one answer for a missing, malformed, unknown, expired or revoked token)."""
    authenticator = services_of(connection).authenticator
    access = await authenticator.authenticate(token_from(connection.headers))
    return context_for(connection, access)


def context_for(connection: HTTPConnection, access: Access) -> CallContext:
    """The CallContext of a caller resolved some other way (the UI's session), recorded for
    the request's log line."""
    set_principal(connection.scope, access.principal)
    structlog.contextvars.bind_contextvars(principal=access.principal)
    return CallContext(
        principal=access.principal, request_id=request_id_of(connection), access=access
    )
