"""The HTTP edge of `modelreg serve` as users run it: its own process, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.auth import make_token
from support.server import s3_env
from support.stores import StoreEndpoints

MODELREG = str(Path(sys.executable).with_name("modelreg"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(base_url: str, process: subprocess.Popen[str], within_s: float = 30.0) -> None:
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


def test_http_requests_are_logged_without_secrets_and_sigterm_stops_the_port(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str
) -> None:
    http_port = _free_port()
    base_url = f"http://127.0.0.1:{http_port}"
    token = asyncio.run(make_token(migrated_database_url, principal="ci-pipeline"))
    server = subprocess.Popen(
        [MODELREG, "serve"],
        env={
            **os.environ,
            **s3_env(store_endpoints, s3_bucket),
            "MODELREG_DATABASE_URL": migrated_database_url,
            "MODELREG_LISTEN": f"127.0.0.1:{_free_port()}",
            "MODELREG_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "MODELREG_LOG_FORMAT": "json",
        },
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_healthy(base_url, server)
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
    assert any(line.get("event") == "shutting down" for line in lines)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/healthz", timeout=2)
