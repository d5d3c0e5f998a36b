"""Lines logged while an RPC is served carry its request id, method and principal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import structlog
from structlog.testing import capture_logs

from modelregistry.api.interceptor import EdgeInterceptor
from modelregistry.domain.access import Access, Role
from modelregistry.logging import configure_logging

_METHOD = "/test.Svc/Step"


def _log_as_the_service_layer(step: str) -> None:
    # A logger of its own, made here rather than at import: the server's logging caches a
    # logger on first use, and each test configures logging anew.
    structlog.get_logger("modelregistry.service.example").info("service step", step=step)


async def _tester(token: str | None) -> Access:
    return Access(principal="tester", role=Role.ADMIN)


async def _step(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    _log_as_the_service_layer(request.decode())
    return b"ok"


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """The event dicts of every line logged, after the server's own processors but the last
    (the renderer), so they are seen as the server writes them."""
    configure_logging(fmt="json")
    processors = structlog.get_config()["processors"][:-1]
    try:
        with capture_logs(processors=processors) as lines:
            yield lines
    finally:
        structlog.reset_defaults()


@pytest.fixture
async def stub() -> AsyncIterator[grpc.aio.UnaryUnaryMultiCallable]:
    server = grpc.aio.server(interceptors=[EdgeInterceptor(_tester)])
    handler = grpc.method_handlers_generic_handler(
        "test.Svc", {"Step": grpc.unary_unary_rpc_method_handler(_step)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary(_METHOD)
    await server.stop(None)


async def test_a_line_logged_below_the_edge_carries_the_calls_request_id_method_and_principal(
    stub: grpc.aio.UnaryUnaryMultiCallable, logged: list[dict[str, Any]]
) -> None:
    await stub(b"first", metadata=[("x-request-id", "rid-first")])
    await stub(b"second", metadata=[("x-request-id", "rid-second")])

    steps = {line["step"]: line for line in logged if line["event"] == "service step"}
    assert steps["first"]["request_id"] == "rid-first"
    assert steps["second"]["request_id"] == "rid-second"
    for line in steps.values():
        assert line["method"] == _METHOD
        assert line["principal"] == "tester"


async def test_a_line_logged_outside_any_call_carries_no_calls_request_id(
    stub: grpc.aio.UnaryUnaryMultiCallable, logged: list[dict[str, Any]]
) -> None:
    await stub(b"inside", metadata=[("x-request-id", "rid-inside")])
    _log_as_the_service_layer("outside")

    outside = next(line for line in logged if line.get("step") == "outside")
    assert "request_id" not in outside
