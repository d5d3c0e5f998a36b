"""The MLflow-compatible REST API (issue 12): `routes` under `/api/2.0/mlflow`,
`artifact_routes` under `/api/2.0/mlflow-artifacts`. See modelregistry.http."""

from __future__ import annotations

from starlette.routing import BaseRoute

from modelregistry.http.mlflow.artifacts import artifact_routes as _artifact_routes
from modelregistry.http.mlflow.errors import render_error
from modelregistry.http.mlflow.registry import registry_routes
from modelregistry.service.container import Services

__all__ = ["artifact_routes", "render_error", "routes"]


def routes(services: Services) -> list[BaseRoute]:
    """MLflow's Model Registry API, relative to `/api/2.0/mlflow`."""
    return registry_routes()


def artifact_routes(services: Services) -> list[BaseRoute]:
    """MLflow's artifact API, relative to `/api/2.0/mlflow-artifacts`."""
    return _artifact_routes()
