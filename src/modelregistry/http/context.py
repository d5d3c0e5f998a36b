"""Per-request facts the edge records in the ASGI scope: the request id, the caller's name for
the log line, and the process's Services and Settings. Surfaces read them through these
functions."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import Scope

from modelregistry.config import Settings
from modelregistry.domain.models import ANONYMOUS
from modelregistry.service.container import Services

REQUEST_ID_HEADER = "x-request-id"
_MAX_REQUEST_ID = 128
_REQUEST_ID = "modelreg.request_id"
_PRINCIPAL = "modelreg.principal"


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def accepted_request_id(value: str | None) -> str | None:
    """An incoming X-Request-Id if it is safe to echo and log (short, printable ASCII)."""
    if value and len(value) <= _MAX_REQUEST_ID and value.isascii() and value.isprintable():
        return value
    return None


def set_request_id(scope: Scope, request_id: str) -> None:
    _state(scope)[_REQUEST_ID] = request_id


def request_id_of(source: Scope | HTTPConnection) -> str:
    """The id of the request being served (set by the request edge before any handler runs)."""
    scope = source.scope if isinstance(source, HTTPConnection) else source
    request_id: str = _state(scope).get(_REQUEST_ID, "")
    return request_id


def set_principal(scope: Scope, principal: str) -> None:
    _state(scope)[_PRINCIPAL] = principal


def principal_of(scope: Scope) -> str:
    principal: str = _state(scope).get(_PRINCIPAL, ANONYMOUS)
    return principal


def services_of(connection: HTTPConnection) -> Services:
    """The process's use cases (the same objects the gRPC servicers call)."""
    services: Services = connection.app.state.services
    return services


def settings_of(connection: HTTPConnection) -> Settings:
    """The server's settings (e.g. `.tls`, for cookies that must be Secure under TLS)."""
    settings: Settings = connection.app.state.settings
    return settings
