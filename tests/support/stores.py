"""The real PostgreSQL and S3 server a test session runs against.

By default one embedded PostgreSQL and one SeaweedFS start for the whole session, on random
free ports below 32768 (Linux hands out 32768+ as ephemeral ports). Set
MODELREG_TEST_DATABASE_URL (a server where we may create databases) and/or
MODELREG_TEST_S3_ENDPOINT (+ MODELREG_TEST_S3_ACCESS_KEY, MODELREG_TEST_S3_SECRET_KEY) to use
existing servers instead.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from minio import Minio

from modelregistry.embedded.postgres import EmbeddedPostgres
from modelregistry.embedded.process import EmbeddedStartError
from modelregistry.embedded.seaweed import GRPC_PORT_OFFSET, EmbeddedSeaweed, SeaweedPorts

# Ports are drawn from here; each SeaweedFS port's gRPC twin (+10000) stays below 32768.
_PORT_RANGE = (20000, 22700)
_START_ATTEMPTS = 3


@dataclass(frozen=True)
class StoreEndpoints:
    admin_database_url: str  # the `postgres` database of a server where we may CREATE DATABASE
    s3_endpoint: str  # host:port
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    # Handles for fault tests (stop()/start() keep the port); None when the store is external.
    postgres: EmbeddedPostgres | None = None
    seaweed: EmbeddedSeaweed | None = None

    def s3_client(self) -> Minio:
        return Minio(
            self.s3_endpoint,
            access_key=self.s3_access_key,
            secret_key=self.s3_secret_key,
            secure=False,
        )

    def database_url(self, database: str) -> str:
        parts = urlsplit(self.admin_database_url)
        return urlunsplit(parts._replace(path=f"/{database}"))


@contextlib.contextmanager
def running_stores(work_dir: Path) -> Iterator[StoreEndpoints]:
    """Start (or find) the session's stores; stop what was started on exit."""
    with contextlib.ExitStack() as stack:
        postgres, seaweed = _start_embedded(work_dir, stack)
        yield _endpoints(postgres, seaweed)


def _start_embedded(
    work_dir: Path, stack: contextlib.ExitStack
) -> tuple[EmbeddedPostgres | None, EmbeddedSeaweed | None]:
    want_postgres = not os.environ.get("MODELREG_TEST_DATABASE_URL")
    want_seaweed = not os.environ.get("MODELREG_TEST_S3_ENDPOINT")
    for attempt in range(1, _START_ATTEMPTS + 1):
        base = free_port_block()
        postgres = (
            EmbeddedPostgres(work_dir / "postgres", port=base, durable=False)
            if want_postgres
            else None
        )
        seaweed = (
            EmbeddedSeaweed(
                work_dir / "seaweedfs", ports=_seaweed_ports(base + 1), stop_timeout_s=1.0
            )
            if want_seaweed
            else None
        )
        started = [s for s in (postgres, seaweed) if s is not None]
        try:
            for store in started:  # launch all, then wait: startup costs the slowest, not the sum
                stack.callback(store.stop)
                store.launch()
            for store in started:
                store.wait_ready()
        except EmbeddedStartError:
            # Most likely a port taken since we probed it (another test session): try others.
            for store in started:
                store.stop()
            if attempt == _START_ATTEMPTS:
                raise
            continue
        return postgres, seaweed
    raise AssertionError("unreachable")


def _endpoints(
    postgres: EmbeddedPostgres | None, seaweed: EmbeddedSeaweed | None
) -> StoreEndpoints:
    if seaweed is not None:
        s3 = (seaweed.endpoint, seaweed.credentials.access_key, seaweed.credentials.secret_key)
    else:
        s3 = (
            os.environ["MODELREG_TEST_S3_ENDPOINT"],
            os.environ.get("MODELREG_TEST_S3_ACCESS_KEY", ""),
            os.environ.get("MODELREG_TEST_S3_SECRET_KEY", ""),
        )
    admin = postgres.admin_dsn if postgres else os.environ["MODELREG_TEST_DATABASE_URL"]
    return StoreEndpoints(
        admin_database_url=admin,
        s3_endpoint=s3[0],
        s3_access_key=s3[1],
        s3_secret_key=s3[2],
        postgres=postgres,
        seaweed=seaweed,
    )


def _seaweed_ports(first: int) -> SeaweedPorts:
    return SeaweedPorts(s3=first, master=first + 1, volume=first + 2, filer=first + 3)


def free_port_block(size: int = 5) -> int:
    """A base port such that base..base+size-1 and their +10000 twins are all free now."""
    for _ in range(200):
        base = random.randrange(*_PORT_RANGE)
        ports = list(range(base, base + size))
        if all(_port_is_free(p) for p in ports + [p + GRPC_PORT_OFFSET for p in ports]):
            return base
    raise RuntimeError(f"no free block of {size} ports in {_PORT_RANGE}")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def unique_name(prefix: str, separator: str = "_") -> str:
    """A database (separator "_") or bucket ("-") name no other test or session uses."""
    return separator.join([prefix, str(int(time.time())), uuid.uuid4().hex[:10]])
