"""The processes a benchmark run owns: an embedded PostgreSQL, SeaweedFS and `modelreg serve`.

All run under a temporary directory and are stopped by the ExitStack that started them, on
success, error, Ctrl-C or SIGTERM alike.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from modelregistry.embedded.postgres import DEFAULT_POSTGRES_PORT, EmbeddedPostgres
from modelregistry.embedded.process import log_tail, spawn_child, stop_child
from modelregistry.embedded.seaweed import (
    GRPC_PORT_OFFSET,
    HIGHEST_PORT,
    EmbeddedSeaweed,
    S3Credentials,
    SeaweedPorts,
    SeaweedTls,
)
from modelregistry.storage.object_store import ObjectStore

# Below 32768 (Linux's ephemeral range starts there, PERF-NOTES) and clear of the system
# PostgreSQL, `modelreg dev`'s defaults and their SeaweedFS gRPC ports.
_PORT_RANGE = (20000, 32000)
_RESERVED_PORTS = frozenset(
    {5432, DEFAULT_POSTGRES_PORT, 50051, *SeaweedPorts().all()},
)
_SERVER_STOP_TIMEOUT_S = 15.0
# SeaweedFS HTTP ports: each one's gRPC twin (+10000) must stay below 32768 as well.
_SEAWEED_PORT_RANGE = (10000, HIGHEST_PORT - GRPC_PORT_OFFSET + 1)
BUCKET = "modelreg-bench"


def free_port(exclude: set[int] | frozenset[int] = frozenset()) -> int:
    """A loopback TCP port below 32768 that nothing listens on right now."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(*_PORT_RANGE)
        if port in _RESERVED_PORTS or port in exclude:
            continue
        if _is_free(port):
            return port
    raise RuntimeError(f"no free port in {_PORT_RANGE[0]}..{_PORT_RANGE[1]}")


def free_seaweed_ports(exclude: set[int] | frozenset[int] = frozenset()) -> SeaweedPorts:
    """Four HTTP ports below 22768 whose gRPC twins (+10000) are free too."""
    rng = random.Random()
    chosen: list[int] = []
    taken = set(exclude)
    for _ in range(400):
        port = rng.randrange(*_SEAWEED_PORT_RANGE)
        pair = {port, port + GRPC_PORT_OFFSET}
        if pair & (_RESERVED_PORTS | taken) or not all(_is_free(p) for p in pair):
            continue
        chosen.append(port)
        taken |= pair
        if len(chosen) == 4:
            return SeaweedPorts(s3=chosen[0], master=chosen[1], volume=chosen[2], filer=chosen[3])
    raise RuntimeError(f"no four free SeaweedFS port pairs in {_SEAWEED_PORT_RANGE}")


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def temp_dir(stack: contextlib.ExitStack) -> Path:
    path = Path(tempfile.mkdtemp(prefix="modelreg-bench-"))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


def start_postgres(stack: contextlib.ExitStack, data_dir: Path, port: int) -> EmbeddedPostgres:
    """The embedded PostgreSQL with its default, durable settings (fsync, synchronous commit).

    Durable, because that is what a deployment runs: the commit flush is part of a write's cost.
    """
    postgres = EmbeddedPostgres(data_dir, port=port)
    stack.callback(postgres.stop)  # a no-op if start failed (start cleans up after itself)
    postgres.start()
    return postgres


def launch_seaweed(
    stack: contextlib.ExitStack, data_dir: Path, ports: SeaweedPorts, tls: SeaweedTls
) -> EmbeddedSeaweed:
    """`weed server -s3` on its own ports, S3 over http and https, not yet waited for (see
    `seaweed_ready`).

    Its data lives on the temporary directory's disk, never /dev/shm (PERF-NOTES).
    """
    seaweed = EmbeddedSeaweed(data_dir, ports=ports, tls=tls)
    stack.callback(seaweed.stop)
    seaweed.launch()
    return seaweed


def seaweed_ready(seaweed: EmbeddedSeaweed) -> None:
    """Wait until SeaweedFS accepts writes, then create the benchmark's bucket."""
    seaweed.wait_ready()
    credentials = seaweed.credentials
    store = ObjectStore(
        seaweed.endpoint, credentials.access_key, credentials.secret_key, BUCKET, secure=False
    )
    try:
        store.ensure_bucket()
    finally:
        store.close()


@dataclass(frozen=True)
class S3Target:
    """Where the server (and the direct S3 comparison) store objects."""

    endpoint: str
    credentials: S3Credentials
    bucket: str = BUCKET
    ca_file: Path | None = None  # set: https, the store's certificate signed by this CA

    @property
    def secure(self) -> bool:
        return self.ca_file is not None


def server_argv() -> list[str]:
    """`modelreg serve`, as users run it (the console script beside this interpreter)."""
    script = Path(sys.executable).parent / "modelreg"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "from modelregistry.cli.main import main; main()", "serve"]


def start_server(
    stack: contextlib.ExitStack,
    log_path: Path,
    listen: str,
    database_url: str,
    s3: S3Target,
    http_listen: str = "",
) -> subprocess.Popen[bytes]:
    """`modelreg serve` as a child in its own process group, output to log_path.

    Log level warning: an info line per RPC would otherwise be a large part of what is measured.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env.update(
        MODELREG_LISTEN=listen,
        MODELREG_DATABASE_URL=database_url,
        MODELREG_LOG_LEVEL="warning",
        MODELREG_LOG_FORMAT="json",
        MODELREG_METRICS_PORT="0",
        MODELREG_SHUTDOWN_GRACE_S="2",
        MODELREG_S3_ENDPOINT=s3.endpoint,
        MODELREG_S3_ACCESS_KEY=s3.credentials.access_key,
        MODELREG_S3_SECRET_KEY=s3.credentials.secret_key,
        MODELREG_S3_BUCKET=s3.bucket,
        MODELREG_HTTP_LISTEN=http_listen,
    )
    if s3.ca_file is not None:
        env.update(MODELREG_S3_SECURE="true", MODELREG_S3_CA_FILE=str(s3.ca_file))
    if http_listen:
        env["MODELREG_HTTP_LISTEN"] = http_listen
    process = spawn_child(server_argv(), log_path, death_signal=signal.SIGTERM, env=env)
    stack.callback(stop_child, process, signal.SIGTERM, _SERVER_STOP_TIMEOUT_S)
    return process


def server_log_tail(log_path: Path) -> str:
    return log_tail(log_path)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def tree_cpu_seconds(root: psutil.Process) -> float:
    """CPU of a process and its live children (PostgreSQL: the postmaster and its backends).

    Backends that exit between two readings take their time with them; the server's pool keeps
    its connections open, so over a measurement window this is close.
    """
    total = 0.0
    for process in _tree(root):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            total += cpu_seconds(process)
    return total


def _tree(root: psutil.Process) -> Iterator[psutil.Process]:
    yield root
    with contextlib.suppress(psutil.NoSuchProcess):
        yield from root.children(recursive=True)


def rss_mib(process: psutil.Process) -> float:
    return round(float(process.memory_info().rss) / (1 << 20), 1)
