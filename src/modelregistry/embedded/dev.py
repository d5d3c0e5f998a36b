"""`modelreg dev`: PostgreSQL and SeaweedFS as children under one data directory, then serve.

Layout of the data directory (default ./.modelreg/):
    dev.lock     flock held by the running `modelreg dev` (its pid inside)
    postgres/    see embedded.postgres
    seaweedfs/   see embedded.seaweed
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from modelregistry.config import Endpoints, Settings
from modelregistry.domain.access import Role
from modelregistry.embedded.locking import DataDirLock
from modelregistry.embedded.postgres import DEFAULT_POSTGRES_PORT, EmbeddedPostgres
from modelregistry.embedded.seaweed import HIGHEST_PORT, EmbeddedSeaweed, SeaweedPorts
from modelregistry.service.auth import issue_token
from modelregistry.storage.database import Database
from modelregistry.storage.migrate import migrate
from modelregistry.storage.object_store import ObjectStore

DEFAULT_DATA_DIR = Path(".modelreg")
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_HTTP_LISTEN = "127.0.0.1:8080"
DEFAULT_BUCKET = "modelregistry"
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105  (a file name)

OnReady = Callable[[Endpoints], None]
Serve = Callable[[Settings, OnReady], None]


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path = DEFAULT_DATA_DIR
    listen: str = DEFAULT_LISTEN
    http_listen: str = DEFAULT_HTTP_LISTEN
    postgres_port: int = DEFAULT_POSTGRES_PORT
    seaweed_ports: SeaweedPorts = field(default_factory=SeaweedPorts)
    bucket: str = DEFAULT_BUCKET

    def __post_init__(self) -> None:
        if not 1 <= self.postgres_port <= HIGHEST_PORT:
            raise ValueError(f"PostgreSQL port {self.postgres_port} must be in 1..{HIGHEST_PORT}")
        if self.postgres_port in self.seaweed_ports.all():
            raise ValueError(f"PostgreSQL port {self.postgres_port} is also a SeaweedFS port")


@dataclass(frozen=True)
class DevStores:
    """The running children and how to reach them."""

    postgres: EmbeddedPostgres
    seaweed: EmbeddedSeaweed
    bucket: str

    def settings(self, listen: str, http_listen: str = DEFAULT_HTTP_LISTEN) -> Settings:
        credentials = self.seaweed.credentials
        return Settings.from_env(
            listen=listen,
            http_listen=http_listen,
            database_url=self.postgres.dsn,
            s3_endpoint=self.seaweed.endpoint,
            s3_access_key=credentials.access_key,
            s3_secret_key=credentials.secret_key,
            s3_bucket=self.bucket,
            s3_secure=False,
        )


def run_dev(options: DevOptions | None = None, *, serve: Serve | None = None) -> None:
    """Run the embedded default until SIGINT/SIGTERM; every child started is stopped on return.

    Raises DataDirInUse at once if another `modelreg dev` holds the data directory.
    `serve` defaults to modelregistry.server.run (injectable for tests).
    """
    options = options or DevOptions()
    serve = serve or _server_run()
    data_dir = options.data_dir.resolve()
    with DataDirLock(data_dir, "dev.lock"):
        children = contextlib.ExitStack()
        try:
            with _termination_raises():
                stores = _start_stores(options, data_dir, children)
            token_file = _ensure_admin_token(stores.postgres.dsn, data_dir)
            settings = stores.settings(options.listen, options.http_listen)
            serve(
                settings,
                lambda endpoints: _print_next_steps(endpoints, stores, data_dir, token_file),
            )
        finally:
            with _termination_ignored():
                children.close()


def _start_stores(options: DevOptions, data_dir: Path, children: contextlib.ExitStack) -> DevStores:
    postgres = EmbeddedPostgres(data_dir / "postgres", port=options.postgres_port)
    seaweed = EmbeddedSeaweed(data_dir / "seaweedfs", ports=options.seaweed_ports)
    _say(f"starting PostgreSQL and SeaweedFS (data in {data_dir}) ...")
    children.callback(_say, "stopped PostgreSQL and SeaweedFS")
    # Both launch before either is awaited: startup takes as long as the slower one.
    children.callback(postgres.stop)
    postgres.launch()
    children.callback(seaweed.stop)
    seaweed.launch()
    postgres.wait_ready()
    seaweed.wait_ready()
    _ensure_bucket(seaweed, options.bucket)
    return DevStores(postgres=postgres, seaweed=seaweed, bucket=options.bucket)


def _ensure_bucket(seaweed: EmbeddedSeaweed, bucket: str) -> None:
    credentials = seaweed.credentials
    store = ObjectStore(
        seaweed.endpoint, credentials.access_key, credentials.secret_key, bucket, secure=False
    )
    try:
        store.ensure_bucket()
    finally:
        store.close()


def _server_run() -> Serve:
    from modelregistry.server import run

    return run


def _ensure_admin_token(dsn: str, data_dir: Path) -> Path:
    """On first start, an admin token kept in the data dir, where the CLI looks for it."""
    token_file = data_dir / ADMIN_TOKEN_FILE
    if not token_file.exists():
        token = asyncio.run(_issue_admin_token(dsn))
        token_file.touch(mode=0o600)
        token_file.write_text(token + "\n")
    return token_file


async def _issue_admin_token(dsn: str) -> str:
    await migrate(dsn)
    db = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        issued = await issue_token(db, "admin", Role.ADMIN, description="modelreg dev")
    finally:
        await db.close()
    return issued.token


def _print_next_steps(
    endpoints: Endpoints, stores: DevStores, data_dir: Path, token_file: Path
) -> None:
    address = endpoints.grpc
    credentials_file = stores.seaweed.identities_path
    lines = [
        f"modelreg dev is serving on {address}",
        f"  HTTP        {endpoints.http_url or 'off'}  (web UI, MLflow and OCI APIs)",
        f"  admin token {token_file.read_text().strip()}",
        f"              (in {token_file}: the CLI reads it there, or from $MODELREG_TOKEN)",
        f"  PostgreSQL  {stores.postgres.dsn}",
        f"  S3          http://{stores.seaweed.endpoint}  bucket {stores.bucket!r}"
        f"  (credentials in {credentials_file})",
        f"  data        {data_dir}",
        "",
        "In another shell:",
        *_activate_hint(),
        f"  export MODELREG_TARGET={address}",
        # By absolute path, so the CLI finds the token from any directory; the token itself
        # stays out of the shell history and of whatever copies this block.
        f"  export MODELREG_TOKEN=$(cat {shlex.quote(str(token_file.resolve()))})",
        "  modelreg models create my-model --owner me",
        "  modelreg models list",
        "",
        "Stop with Ctrl-C.",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _activate_hint() -> list[str]:
    """How to get `modelreg` on PATH, if it is not there (it lives in the project's venv)."""
    bin_dir = Path(sys.executable).parent
    if shutil.which("modelreg") == str(bin_dir / "modelreg"):
        return []
    return [f"  source {bin_dir / 'activate'}"]


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def _termination_raises() -> Iterator[None]:
    """While children start, make SIGTERM/SIGHUP unwind like Ctrl-C, so that they are stopped.

    Their default action would end this process at once and leave the children to the
    parent-death signal alone.
    """

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
    """A second Ctrl-C while children stop would abandon them half-way: ignore it.

    SIGKILL still works, and then the parent-death signal stops the children.
    """
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
