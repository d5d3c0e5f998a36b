"""The MLflow-compatible REST API (issue 12): `routes` under `/api/2.0/mlflow`,
`artifact_routes` under `/api/2.0/mlflow-artifacts`. See modelregistry.http."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from modelregistry.http.errors import HttpError, render_json_error
from modelregistry.service.container import Services


def routes(services: Services) -> list[BaseRoute]:
    """Routes relative to `/api/2.0/mlflow` (e.g. Route("/registered-models/get", ...))."""
    return []


def artifact_routes(services: Services) -> list[BaseRoute]:
    """Routes relative to `/api/2.0/mlflow-artifacts` (e.g. Route("/artifacts/{path:path}"))."""
    return []


def render_error(request: Request, error: HttpError) -> Response:
    """MLflow's error body (placeholder: the edge's JSON shape until this surface has its own,
    `{"error_code", "message"}`)."""
    return render_json_error(request, error)
