"""The HTTP edge shared by the web UI, the MLflow API and OCI pulls, driven with httpx.

Probes, request ids and metrics go to the registry's own server (`http_base_url`). The rest
serves test-only routes on the real edge (edge_app + surface + uvicorn, over the real
database and bucket): the shipped app has no route that fails on purpose or echoes a caller.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from integration.artifact_helpers import LocalFile, new_version, upload
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from support.auth import make_token
from support.stores import StoreEndpoints

from modelregistry.config import Settings
from modelregistry.domain.access import Role
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import NotFound
from modelregistry.domain.names import VersionRef
from modelregistry.http.app import edge_app, surface
from modelregistry.http.auth import authenticate
from modelregistry.http.context import services_of
from modelregistry.http.errors import HttpError
from modelregistry.http.serving import start_http
from modelregistry.http.streaming import stream_artifact
from modelregistry.server import object_store_from
from modelregistry.service.container import Services, build_services
from modelregistry.storage import secrets_store
from modelregistry.storage.database import Database
from modelregistry.v1 import artifact_service_pb2_grpc
from modelregistry.v1 import registry_service_pb2_grpc as rs

HEX_ID = re.compile(r"[0-9a-f]{32}")
SECRET_DETAIL = "password=hunter2"


async def _wait_ready(client: httpx.AsyncClient) -> httpx.Response:
    for _ in range(200):
        response = await client.get("/readyz")
        if response.status_code == 200:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never became ready: {response.text}")


# -- the registry's own HTTP port ---------------------------------------------------------


async def test_healthz_answers_and_readyz_reports_the_stores(http_base_url: str) -> None:
    async with httpx.AsyncClient(base_url=http_base_url) as client:
        health = await client.get("/healthz")
        ready = await _wait_ready(client)

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready"}


async def test_a_safe_request_id_is_echoed_and_an_unsafe_one_replaced(http_base_url: str) -> None:
    async with httpx.AsyncClient(base_url=http_base_url) as client:
        echoed = await client.get("/healthz", headers={"x-request-id": "ci-run-42"})
        replaced = await client.get("/healthz", headers={"x-request-id": "x" * 500})
        made = await client.get("/healthz")

    assert echoed.headers["x-request-id"] == "ci-run-42"
    assert HEX_ID.fullmatch(replaced.headers["x-request-id"])
    assert HEX_ID.fullmatch(made.headers["x-request-id"])


async def test_requests_are_counted_by_route_template_and_status(http_base_url: str) -> None:
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    before = REGISTRY.get_sample_value("modelreg_http_requests_total", labels) or 0.0
    async with httpx.AsyncClient(base_url=http_base_url) as client:
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200

    assert REGISTRY.get_sample_value("modelreg_http_requests_total", labels) == before + 3
    histogram = {"method": "GET", "route": "/healthz"}
    assert REGISTRY.get_sample_value("modelreg_http_request_seconds_count", histogram)


# -- test-only routes on the real edge ------------------------------------------------------


def _oci_like(request: Request, error: HttpError) -> Response:
    """A surface's own error shape, as OCI's would be."""
    headers = dict(error.headers)
    if error.status == 401:
        headers["www-authenticate"] = 'Basic realm="modelregistry"'
    body = {"errors": [{"code": error.code, "message": error.message}], "id": error.request_id}
    return JSONResponse(body, status_code=error.status, headers=headers)


async def _whoami(request: Request) -> Response:
    ctx = await authenticate(request)
    return JSONResponse({"principal": ctx.principal, "request_id": ctx.request_id})


async def _fails(request: Request) -> Response:
    raise RuntimeError(f"cannot connect: {SECRET_DETAIL}")


async def _missing(request: Request) -> Response:
    raise NotFound("models/absent has no version 9", reason=ErrorReason.VERSION_NOT_FOUND)


async def _artifact(request: Request) -> Response:
    params = request.path_params
    ref = VersionRef(params["model"], number=int(params["version"]))
    return await stream_artifact(request, services_of(request), ref, params["path"])


TEST_ROUTES: list[BaseRoute] = [
    Route("/whoami", _whoami),
    Route("/fails", _fails),
    Route("/missing", _missing),
    Route("/artifacts/{model}/{version:int}/{path:path}", _artifact, methods=["GET", "HEAD"]),
]


@pytest.fixture
async def edge_services(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str
) -> AsyncIterator[Services]:
    settings = Settings(
        database_url=migrated_database_url,
        s3_endpoint=store_endpoints.s3_endpoint,
        s3_access_key=store_endpoints.s3_access_key,
        s3_secret_key=store_endpoints.s3_secret_key,
        s3_bucket=s3_bucket,
    )
    db = await Database.connect(migrated_database_url, min_size=1, max_size=4)
    store = object_store_from(settings)
    async with db.connection() as conn:
        page_key = await secrets_store.page_token_key(conn)
    services = build_services(db, store, page_key, max_concurrent_uploads=2)
    try:
        yield services
    finally:
        await services.artifacts.close()
        await db.close()
        store.close()


@pytest.fixture
async def edge(edge_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(http_listen="127.0.0.1:0", shutdown_grace_s=1.0)
    app = edge_app(edge_services, settings, [surface("/t", TEST_ROUTES, _oci_like)])
    server = await start_http(app, settings)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            yield client
    finally:
        await server.stop(1.0)


async def test_an_unexpected_error_is_a_500_with_the_request_id_and_nothing_else(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.get("/t/fails", headers={"x-request-id": "trace-500"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-500"
    body = response.json()
    assert body["errors"][0]["code"] == "INTERNAL"
    assert "trace-500" in body["errors"][0]["message"]
    assert SECRET_DETAIL not in response.text
    assert "RuntimeError" not in response.text
    labels = {"method": "GET", "route": "/t/fails", "status": "500"}
    assert REGISTRY.get_sample_value("modelreg_http_requests_total", labels)


async def test_a_domain_error_gets_its_status_in_the_surface_shape(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.get("/t/missing")

    assert response.status_code == 404
    assert response.json()["errors"] == [
        {"code": "VERSION_NOT_FOUND", "message": "models/absent has no version 9"}
    ]
    assert response.json()["id"] == response.headers["x-request-id"]


async def test_routing_errors_inside_a_surface_use_its_shape(edge: httpx.AsyncClient) -> None:
    unknown = await edge.get("/t/no/such/route")
    wrong_method = await edge.post("/t/whoami")

    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "NOT_FOUND"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in wrong_method.headers["allow"]
    labels = {"method": "GET", "route": "/t/<unmatched>", "status": "404"}
    assert REGISTRY.get_sample_value("modelreg_http_requests_total", labels)


async def test_bearer_and_basic_tokens_resolve_the_same_caller(
    edge: httpx.AsyncClient, migrated_database_url: str
) -> None:
    token = await make_token(migrated_database_url, principal="ci-bot", role=Role.VIEWER)
    basic = base64.b64encode(f"whoever:{token}".encode()).decode()

    bearer = await edge.get(
        "/t/whoami", headers={"authorization": f"Bearer {token}", "x-request-id": "r-1"}
    )
    by_basic = await edge.get("/t/whoami", headers={"authorization": f"Basic {basic}"})

    assert bearer.status_code == 200
    assert bearer.json() == {"principal": "ci-bot", "request_id": "r-1"}
    assert by_basic.status_code == 200
    assert by_basic.json()["principal"] == "ci-bot"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer mr_not-a-real-token", "Basic " + base64.b64encode(b"u:wrong").decode()],
)
async def test_a_missing_or_unknown_token_is_the_surface_401(
    edge: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = await edge.get("/t/whoami", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="modelregistry"'
    assert response.json()["errors"][0]["code"] == "TOKEN_REQUIRED"
    if authorization:
        assert authorization.split()[-1] not in response.text


# -- Range streaming over a real artifact ---------------------------------------------------


@pytest.fixture
async def uploaded(channel: grpc.aio.Channel, tmp_path: Path) -> tuple[str, int, LocalFile]:
    """(model, version number, file) of a 3 MiB + 123 byte artifact at weights/model.bin."""
    registry = rs.RegistryServiceStub(channel)
    artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
    version = await new_version(registry, "ranged")
    file = LocalFile.random(tmp_path / "model.bin", 3 * (1 << 20) + 123)
    await upload(artifacts, version, "weights/model.bin", file)
    return "ranged", int(version.rsplit("/", 1)[1]), file


async def test_a_whole_artifact_streams_with_its_length_and_digest(
    edge: httpx.AsyncClient, uploaded: tuple[str, int, LocalFile]
) -> None:
    model, number, file = uploaded
    response = await edge.get(f"/t/artifacts/{model}/{number}/weights/model.bin")

    assert response.status_code == 200
    assert response.headers["content-length"] == str(file.size)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{file.sha256}"'
    assert response.content == file.read(0, file.size)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=1048570-2097160", 1048570, 2097160),  # across a chunk boundary
        ("bytes=3145000-", 3145000, 3 * (1 << 20) + 122),
        ("bytes=-500", 3 * (1 << 20) + 123 - 500, 3 * (1 << 20) + 122),
        ("bytes=3145728-99999999", 3145728, 3 * (1 << 20) + 122),
    ],
)
async def test_a_range_is_a_206_with_exactly_those_bytes(
    edge: httpx.AsyncClient,
    uploaded: tuple[str, int, LocalFile],
    header: str,
    first: int,
    last: int,
) -> None:
    model, number, file = uploaded
    response = await edge.get(
        f"/t/artifacts/{model}/{number}/weights/model.bin", headers={"range": header}
    )

    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{file.size}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == file.read(first, last - first + 1)


@pytest.mark.parametrize("header", ["bytes=3145851-", "bytes=5000000-5000010", "bytes=9-3"])
async def test_an_unsatisfiable_range_is_a_416_naming_the_size(
    edge: httpx.AsyncClient, uploaded: tuple[str, int, LocalFile], header: str
) -> None:
    model, number, file = uploaded
    response = await edge.get(
        f"/t/artifacts/{model}/{number}/weights/model.bin", headers={"range": header}
    )

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{file.size}"
    assert response.content == b""


async def test_head_gives_the_headers_without_the_body(
    edge: httpx.AsyncClient, uploaded: tuple[str, int, LocalFile]
) -> None:
    model, number, file = uploaded
    url = f"/t/artifacts/{model}/{number}/weights/model.bin"
    whole = await edge.head(url)
    part = await edge.head(url, headers={"range": "bytes=100-199"})

    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(file.size)
    assert whole.content == b""
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{file.size}"


async def test_a_missing_artifact_is_the_surface_404(
    edge: httpx.AsyncClient, uploaded: tuple[str, int, LocalFile]
) -> None:
    model, number, _ = uploaded
    response = await edge.get(f"/t/artifacts/{model}/{number}/absent.bin")

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "ARTIFACT_NOT_FOUND"
