"""The OCI Distribution API (issue 13), mounted at `/v2`. See modelregistry.http."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from modelregistry.http.errors import HttpError, render_json_error
from modelregistry.service.container import Services


def routes(services: Services) -> list[BaseRoute]:
    """Routes relative to `/v2` (e.g. Route("/", ...) for the version check,
    Route("/{name:path}/blobs/{digest}", ...))."""
    return []


def render_error(request: Request, error: HttpError) -> Response:
    """OCI's error body (placeholder: the edge's JSON shape until this surface has its own,
    `{"errors": [{"code", "message"}]}`)."""
    return render_json_error(request, error)
