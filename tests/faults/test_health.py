"""Health follows PostgreSQL: NOT_SERVING while it is down, SERVING when it is back."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.stores import StoreEndpoints
from support.stubs import RegistryServiceAsyncStub

from modelregistry.v1 import registry_service_pb2 as pb

pytestmark = pytest.mark.faults

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _wait_for_status(channel: grpc.aio.Channel, wanted: int, within_s: float = 20.0) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + within_s
    status = None
    while time.monotonic() < deadline:
        # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
        response = await health.Check(health_pb2.HealthCheckRequest(service=""))  # type: ignore[attr-defined]
        status = response.status
        if status == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"health stayed {status}, expected {wanted}")


async def test_health_tracks_postgres_without_a_restart(
    store_endpoints: StoreEndpoints, channel: grpc.aio.Channel, registry: RegistryServiceAsyncStub
) -> None:
    postgres = store_endpoints.postgres
    if postgres is None:
        pytest.skip("PostgreSQL is external (MODELREG_TEST_DATABASE_URL): cannot stop it")
    await registry.CreateModel(pb.CreateModelRequest(model_id="survivor"))
    await _wait_for_status(channel, SERVING)

    postgres.stop()  # from the main thread: children die with the thread that spawned them
    try:
        await _wait_for_status(channel, NOT_SERVING)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await registry.GetModel(pb.GetModelRequest(name="models/survivor"))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "asyncpg" not in (caught.value.details() or "")
    finally:
        postgres.start()

    await _wait_for_status(channel, SERVING)
    model = await registry.GetModel(pb.GetModelRequest(name="models/survivor"))
    assert model.name == "models/survivor"
