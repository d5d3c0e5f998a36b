"""The web UI (issue 11), mounted at `/` after every other surface: it owns the paths no
other surface claims. Fill in `routes` and `render_error`; see modelregistry.http."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from modelregistry.http.errors import HttpError, render_json_error
from modelregistry.service.container import Services


def routes(services: Services) -> list[BaseRoute]:
    """The UI's routes, paths relative to `/`."""
    return []


def render_error(request: Request, error: HttpError) -> Response:
    """The UI's error page (placeholder: the edge's JSON shape until the UI has its page)."""
    return render_json_error(request, error)
