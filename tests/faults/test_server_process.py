"""`modelreg serve` as users run it: its own process, configured by env, stopped by signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.auth import make_token
from support.server import s3_env
from support.stores import StoreEndpoints

from modelregistry import client
from modelregistry.v1 import registry_service_pb2 as pb
from modelregistry.v1.registry_service_pb2_grpc import RegistryServiceStub

MODELREG = str(Path(sys.executable).with_name("modelreg"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(
    database_url: str, stores: StoreEndpoints, bucket: str, port: int, **extra: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        **s3_env(stores, bucket),
        "MODELREG_DATABASE_URL": database_url,
        "MODELREG_LISTEN": f"127.0.0.1:{port}",
        "MODELREG_LOG_FORMAT": "json",
        **extra,
    }
    return subprocess.Popen(
        [MODELREG, "serve"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def _wait_serving(target: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status  # type: ignore[attr-defined]
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{target} did not become SERVING")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_logs_each_call_and_stops_cleanly_on_signal(
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
    stop_signal: signal.Signals,
) -> None:
    port, metrics_port = _free_port(), _free_port()
    server = _serve(
        migrated_database_url, store_endpoints, s3_bucket, port,
        MODELREG_METRICS_PORT=str(metrics_port),
    )  # fmt: skip
    try:
        _wait_serving(f"127.0.0.1:{port}")
        token = asyncio.run(make_token(migrated_database_url, principal="ci-pipeline"))
        with client.connect(f"127.0.0.1:{port}", token=token) as channel:
            registry = RegistryServiceStub(channel)
            registry.CreateModel(
                pb.CreateModelRequest(model_id="logged"),
                metadata=(("x-request-id", "req-123"),),
            )
            with pytest.raises(grpc.RpcError):
                registry.GetModel(pb.GetModelRequest(name="models/absent"))
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        server.send_signal(stop_signal)
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("event") == "rpc"]
    created = next(c for c in calls if c["method"].endswith("/CreateModel"))
    assert created["request_id"] == "req-123"
    assert created["code"] == "OK"
    assert created["principal"] == "ci-pipeline"
    assert created["duration_ms"] >= 0
    missing = next(c for c in calls if c["method"].endswith("/GetModel"))
    assert missing["code"] == "NOT_FOUND"
    assert any(line.get("event") == "shutting down" for line in lines)
    assert 'code="NOT_FOUND",method="/modelregistry.v1.RegistryService/GetModel"' in metrics
    assert "modelreg_rpc_seconds_bucket" in metrics


def test_serve_refuses_bad_config_with_one_line(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str
) -> None:
    result = subprocess.run(
        [MODELREG, "serve"],
        env={
            **os.environ,
            **s3_env(store_endpoints, s3_bucket),
            "MODELREG_DATABASE_URL": migrated_database_url,
            "MODELREG_DATABASE_POOL_MAX": "lots",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "MODELREG_DATABASE_POOL_MAX" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_database_url_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    result = subprocess.run(
        [MODELREG, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "MODELREG_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_http_requests_are_logged_without_secrets_and_sigterm_stops_the_http_port(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str
) -> None:
    http_port = _free_port()
    base_url = f"http://127.0.0.1:{http_port}"
    token = asyncio.run(make_token(migrated_database_url, principal="ci-pipeline"))
    server = _serve(
        migrated_database_url, store_endpoints, s3_bucket, _free_port(),
        MODELREG_HTTP_LISTEN=f"127.0.0.1:{http_port}",
    )  # fmt: skip
    try:
        _wait_http_healthy(base_url, server)
        missing = httpx.get(
            f"{base_url}/v2/no-such-thing?token=query-secret",
            headers={"authorization": f"Bearer {token}", "x-request-id": "req-http-1"},
            timeout=10,
        )
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()

    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "req-http-1"
    assert server.returncode == 0
    assert token not in stderr
    assert "query-secret" not in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    request = next(line for line in lines if line.get("request_id") == "req-http-1")
    assert request["event"] == "http"
    assert request["method"] == "GET"
    assert request["route"] == "/v2/<unmatched>"
    assert request["status"] == 404
    assert request["duration_ms"] >= 0
    serving = next(line for line in lines if line.get("event") == "serving")
    assert serving["http_url"] == base_url
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/healthz", timeout=2)


def _wait_http_healthy(
    base_url: str, process: subprocess.Popen[str], within_s: float = 30.0
) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "modelreg serve exited before serving HTTP"
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base_url}/healthz never answered")
