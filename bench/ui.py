"""The web UI's heaviest page: a model with 1,000 versions ("ui" in the report).

Seeds model `bench-ui` with VERSIONS versions through gRPC (metrics on every one, one version
in PRODUCTION), signs in to the UI with the bench's token like a browser (the form, the
session cookie), then GETs `/models/bench-ui` ROUNDS times one after another over real HTTP:
the version table's first page, the chart of a metric across all 1,000 versions, the
policy, the timeline and the deployments. Reports p50/p99/max of the whole response time.
The issue's target: under 200 ms on this machine.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from typing import Any

import grpc
import httpx

from modelregistry.v1 import (
    model_pb2,
    model_version_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
)

MODEL = "bench-ui"
VERSIONS = 1000
WORKERS = 8
WARMUP = 3
ROUNDS = 30
TIMEOUT_S = 30.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _seed(stub: registry_service_pb2_grpc.RegistryServiceAsyncStub) -> None:
    await stub.CreateModel(
        registry_service_pb2.CreateModelRequest(
            model_id=MODEL,
            model=model_pb2.Model(description="# Bench\n\nA model card.", owner="bench"),
        ),
        timeout=TIMEOUT_S,
    )
    rng = random.Random(3)
    remaining = iter(range(VERSIONS))

    async def creator() -> None:
        for index in remaining:
            await stub.CreateModelVersion(
                registry_service_pb2.CreateModelVersionRequest(
                    parent=f"models/{MODEL}",
                    model_version=model_version_pb2.ModelVersion(
                        description=f"nightly #{index}",
                        metrics={"accuracy": rng.random(), "loss": rng.random(), "f1": 0.5},
                        parameters={"lr": "0.001", "epochs": str(index % 10)},
                    ),
                ),
                timeout=TIMEOUT_S,
            )

    await asyncio.gather(*(creator() for _ in range(WORKERS)))
    await stub.TransitionModelVersionStage(
        registry_service_pb2.TransitionModelVersionStageRequest(
            name=f"models/{MODEL}/versions/{VERSIONS // 2}",
            stage=model_version_pb2.STAGE_PRODUCTION,
            reason="bench",
        ),
        timeout=TIMEOUT_S,
    )


async def _sign_in(client: httpx.AsyncClient, token: str) -> None:
    form = await client.get("/signin")
    match = _CSRF.search(form.text)
    if match is None:
        raise RuntimeError("the UI's sign-in page has no CSRF token")
    response = await client.post("/signin", data={"csrf_token": match.group(1), "token": token})
    if response.status_code != 303:
        raise RuntimeError(f"signing in to the UI failed with HTTP {response.status_code}")


async def run(channel: grpc.aio.Channel, http_url: str, token: str) -> dict[str, Any]:
    await _seed(registry_service_pb2_grpc.RegistryServiceStub(channel))
    async with httpx.AsyncClient(base_url=http_url, timeout=TIMEOUT_S) as client:
        await _sign_in(client, token)
        timings_ms: list[float] = []
        size = 0
        for round_index in range(WARMUP + ROUNDS):
            started = time.perf_counter()
            response = await client.get(f"/models/{MODEL}")
            elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 200 or "PRODUCTION v" not in response.text:
                raise RuntimeError(f"the model page answered HTTP {response.status_code}")
            size = len(response.content)
            if round_index >= WARMUP:
                timings_ms.append(elapsed_ms)
    timings_ms.sort()
    return {
        "model_page_1000_versions_ms": {
            "p50": round(statistics.median(timings_ms), 1),
            "p99": round(timings_ms[min(len(timings_ms) - 1, int(len(timings_ms) * 0.99))], 1),
            "max": round(timings_ms[-1], 1),
            "rounds": ROUNDS,
            "page_bytes": size,
        }
    }
