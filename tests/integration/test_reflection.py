"""Reflection: `buf curl` talks to the server with no proto files at hand."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from support.stubs import RegistryServiceAsyncStub

from modelregistry.v1 import registry_service_pb2 as pb

BUF = str(Path(sys.executable).with_name("buf"))


async def _buf_curl(target: str, method: str, body: dict[str, object]) -> tuple[int, str, str]:
    token = os.environ["MODELREG_TOKEN"]  # set by the admin_token fixture
    process = await asyncio.create_subprocess_exec(
        BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
        "-H", f"Authorization: Bearer {token}", "--reflect-header",
        f"Authorization: Bearer {token}",
        "-d", json.dumps(body), f"http://{target}/{method}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, stdout.decode(), stderr.decode()


async def test_buf_curl_over_reflection(
    registry: RegistryServiceAsyncStub, registry_target: str
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id="reflected"))
    version = await registry.CreateModelVersion(
        pb.CreateModelVersionRequest(parent="models/reflected")
    )
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=version.name, alias="champion")
    )

    code, out, err = await _buf_curl(
        registry_target,
        "modelregistry.v1.RegistryService/GetModelVersion",
        {"name": "models/reflected/versions/champion"},
    )

    assert code == 0, err
    assert json.loads(out)["name"] == "models/reflected/versions/1"

    code, out, err = await _buf_curl(
        registry_target, "grpc.health.v1.Health/Check", {"service": ""}
    )
    assert code == 0, err
    assert json.loads(out)["status"] == "SERVING"
