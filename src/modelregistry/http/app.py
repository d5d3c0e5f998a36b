"""The one ASGI application of the HTTP edge: probes, then each surface under its prefix."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from modelregistry.config import Settings
from modelregistry.http import mlflow, oci, probes, ui
from modelregistry.http.edge import RequestEdge
from modelregistry.http.errors import ErrorEdge, ErrorRenderer
from modelregistry.service.container import Services

MLFLOW_PREFIX = "/api/2.0/mlflow"
MLFLOW_ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"
OCI_PREFIX = "/v2"


def surface(prefix: str, routes: list[BaseRoute], render: ErrorRenderer) -> Mount:
    """A surface's routes under `prefix`, behind an error edge that renders with `render`."""
    return Mount(prefix, routes=routes, middleware=[Middleware(ErrorEdge, render=render)])


def create_app(services: Services, settings: Settings) -> Starlette:
    """The registry's HTTP application."""
    return edge_app(
        services,
        settings,
        [
            *probes.routes(),
            surface(MLFLOW_PREFIX, mlflow.routes(services), mlflow.render_error),
            surface(MLFLOW_ARTIFACTS_PREFIX, mlflow.artifact_routes(services), mlflow.render_error),
            surface(OCI_PREFIX, oci.routes(services), oci.render_error),
            # Last: the UI owns every path the others leave.
            surface("", ui.routes(services), ui.render_error),
        ],
    )


def edge_app(services: Services, settings: Settings, routes: list[BaseRoute]) -> Starlette:
    """`routes` behind the request edge (request id, log line, metrics, last-resort 500),
    with services_of(request) and settings_of(request) answering. Tests use it to serve
    routes of their own on the real edge."""
    app = Starlette(routes=routes, middleware=[Middleware(RequestEdge, routes=routes)])
    app.state.services = services
    app.state.settings = settings
    return app
