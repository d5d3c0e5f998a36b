"""HTTP probes: /healthz says the process answers; /readyz says PostgreSQL and S3 answered the
server's store monitor at its last check (the same state the gRPC health service reports)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelregistry.http.context import services_of


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    health = services_of(request).store_health
    if health.serving:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready", "cause": health.cause}, status_code=503)


def routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
