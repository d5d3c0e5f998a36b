"""Shared by the fault tests: `modelreg serve` in a process of its own, and stores to stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from integration.artifact_helpers import MODELREG, server_env, wait_for_health
from support.auth import make_token
from support.server import authenticated_channel
from support.stores import StoreEndpoints

from modelregistry.embedded.seaweed import EmbeddedSeaweed

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve_process(
    database_url: str,
    stores: StoreEndpoints,
    bucket: str,
    log: Path,
    target: str = "",
    **env: str,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, grpc.aio.Channel]]:
    """`modelreg serve` in its own process (on `target`, default a free port) with `env`
    added; yields it and a channel once it is SERVING."""
    target = target or f"127.0.0.1:{free_port()}"
    env = {**server_env(database_url, stores, bucket), "MODELREG_LISTEN": target, **env}
    with log.open("ab") as log_file:  # a file, not a pipe: a full pipe would stall the server
        process = await asyncio.create_subprocess_exec(
            MODELREG, "serve", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log_file
        )
    try:
        token = await make_token(database_url)
        async with authenticated_channel(target, token) as channel:
            await wait_for_health(channel, SERVING)
            yield process, channel
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def seaweed_of(stores: StoreEndpoints) -> EmbeddedSeaweed:
    if stores.seaweed is None:
        pytest.skip("S3 is external (MODELREG_TEST_S3_ENDPOINT): cannot stop it")
    return stores.seaweed


@contextlib.contextmanager
def frozen(seaweed: EmbeddedSeaweed) -> Iterator[None]:
    """SIGSTOP SeaweedFS, as a hung or partitioned store behaves: connections
    are accepted by the kernel and never answered. SIGCONT on the way out, whatever happens."""
    pid = seaweed.pid
    assert pid is not None, "SeaweedFS is not running"
    os.kill(pid, signal.SIGSTOP)  # `weed server` is one process: master, volume, filer, S3
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
