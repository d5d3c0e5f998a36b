"""The MLflow surface next to gRPC ("mlflow" in the report): get_model_version and
create_model_version through `/api/2.0/mlflow/model-versions/...` (the JSON MLflow's client
sends, over one keep-alive httpx client) and the same calls over gRPC, on one model, at 1
and 8 concurrent clients.

The MLflow calls resolve the display name to the model first (one more read than gRPC, which
names the model by id), then call the same use case."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from modelregistry.v1 import model_pb2, registry_service_pb2_grpc
from modelregistry.v1 import registry_service_pb2 as pb

MODEL_ID = "bench-mlflow"
DISPLAY_NAME = "Bench MLflow"
SEEDED_VERSIONS = 200
TIMEOUT_S = 30.0

Op = Callable[[int], Awaitable[None]]
Measure = Callable[[Op, int], Awaitable[dict[str, Any]]]


async def run(
    stub: registry_service_pb2_grpc.RegistryServiceAsyncStub,
    http_url: str,
    token: str,
    measure: Measure,
    concurrency: dict[str, int],
) -> dict[str, Any]:
    await stub.CreateModel(
        pb.CreateModelRequest(model_id=MODEL_ID, model=model_pb2.Model(display_name=DISPLAY_NAME)),
        timeout=TIMEOUT_S,
    )
    for _ in range(SEEDED_VERSIONS):
        await stub.CreateModelVersion(
            pb.CreateModelVersionRequest(parent=f"models/{MODEL_ID}"), timeout=TIMEOUT_S
        )
    rng = random.Random(7)
    clients = [_KeepAlive(http_url, token) for _ in range(max(concurrency.values()))]
    try:

        async def mlflow_get(worker: int) -> None:
            version = str(rng.randint(1, SEEDED_VERSIONS))
            query = urlencode({"name": DISPLAY_NAME, "version": version})
            await clients[worker].call("GET", f"{API}/model-versions/get?{query}", None)

        async def mlflow_create(worker: int) -> None:
            body = {"name": DISPLAY_NAME, "source": "s3://bench/model", "run_id": "r"}
            await clients[worker].call("POST", f"{API}/model-versions/create", body)

        async def grpc_get(worker: int) -> None:
            number = rng.randint(1, SEEDED_VERSIONS)
            await stub.GetModelVersion(
                pb.GetModelVersionRequest(name=f"models/{MODEL_ID}/versions/{number}"),
                timeout=TIMEOUT_S,
            )

        async def grpc_create(worker: int) -> None:
            await stub.CreateModelVersion(
                pb.CreateModelVersionRequest(parent=f"models/{MODEL_ID}"), timeout=TIMEOUT_S
            )

        ops: dict[str, dict[str, Op]] = {
            "get_model_version": {"mlflow": mlflow_get, "grpc": grpc_get},
            "create_model_version": {"mlflow": mlflow_create, "grpc": grpc_create},
        }
        results: dict[str, Any] = {}
        for call, surfaces in ops.items():
            results[call] = {}
            for surface, op in surfaces.items():
                results[call][surface] = {
                    label: await measure(op, clients) for label, clients in concurrency.items()
                }
        return results
    finally:
        for client in clients:
            await client.close()


API = "/api/2.0/mlflow"


class _KeepAlive:
    """One HTTP/1.1 keep-alive connection; every answer must be 200 with a Content-Length."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._token = token
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, method: str, target: str, body: dict[str, Any] | None) -> bytes:
        try:
            return await self._call(method, target, body)
        except _Closed:
            # The server closed an idle keep-alive connection (uvicorn after 5 s), as it may:
            # open a new one, as HTTP clients do.
            await self.close()
            return await self._call(method, target, body)

    async def _call(self, method: str, target: str, body: dict[str, Any] | None) -> bytes:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Authorization: Bearer {self._token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        status = await asyncio.wait_for(reader.readline(), TIMEOUT_S)
        if not status:
            raise _Closed
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        if status.split()[1:2] != [b"200"]:
            raise RuntimeError(f"{method} {target}: {status!r} {answer[:200]!r}")
        return answer

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


class _Closed(Exception):
    """The connection was closed before an answer began."""
