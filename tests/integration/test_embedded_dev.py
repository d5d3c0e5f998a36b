"""`modelreg dev` as a user runs it: a real subprocess with real children."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from minio import Minio
from support.stores import free_port_block

_READY_LINE = "modelreg dev is serving on"
_START_TIMEOUT_S = 60.0


@dataclass
class DevRun:
    data_dir: Path
    base_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.base_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.base_port + 6}"

    @property
    def postgres_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.base_port + 1}/modelregistry"

    @property
    def s3_endpoint(self) -> str:
        return f"127.0.0.1:{self.base_port + 2}"

    def argv(self) -> list[str]:
        p = self.base_port
        return [
            str(Path(sys.executable).parent / "modelreg"), "dev",
            "--data-dir", str(self.data_dir), "--listen", self.listen,
            "--postgres-port", str(p + 1), "--s3-port", str(p + 2),
            "--master-port", str(p + 3), "--volume-port", str(p + 4), "--filer-port", str(p + 5),
            "--http-listen", f"127.0.0.1:{p + 6}",
        ]  # fmt: skip

    def start(self) -> None:
        with (self.data_dir.parent / "dev.out").open("wb") as log:
            self.process = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while _READY_LINE not in self.output():
            assert self.process.poll() is None, f"modelreg dev exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"modelreg dev did not serve:\n{self.output()}"
            time.sleep(0.1)

    def output(self) -> str:
        return (self.data_dir.parent / "dev.out").read_text(errors="replace")

    def interrupt(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(30)

    def s3_client(self) -> Minio:
        identities = json.loads((self.data_dir / "seaweedfs" / "s3-identities.json").read_text())
        keys = identities["identities"][0]["credentials"][0]
        return Minio(
            self.s3_endpoint,
            access_key=keys["accessKey"],
            secret_key=keys["secretKey"],
            secure=False,
        )


def _children_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(str(data_dir) in part for part in cmdline) and "dev" not in cmdline:
            found.append(process)
    return found


def _wait_no_children(data_dir: Path, timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while (left := _children_using(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevRun]:
    # Listen port, five store ports and the HTTP port; the four SeaweedFS ones have +10000
    # twins.
    run = DevRun(data_dir=tmp_path / "modelreg", base_port=free_port_block(7))
    yield run
    if run.process is not None and run.process.poll() is None:
        run.process.kill()
        run.process.wait()
    for leftover in _wait_no_children(run.data_dir, 10):
        leftover.kill()


def test_dev_serves_and_refuses_a_second_instance_on_the_same_data_dir(dev: DevRun) -> None:
    dev.start()
    assert dev.process is not None
    assert f"export MODELREG_TARGET={dev.listen}" in dev.output()
    assert dev.http_url in dev.output()
    assert httpx.get(f"{dev.http_url}/healthz", timeout=10).status_code == 200

    started = time.monotonic()
    second = subprocess.run(dev.argv(), capture_output=True, text=True, timeout=30, check=False)

    assert second.returncode != 0
    assert time.monotonic() - started < 10
    assert "in use by process" in second.stderr
    assert str(dev.process.pid) in second.stderr
    assert dev.process.poll() is None, "the first instance must keep serving"


def test_sigint_stops_every_child(dev: DevRun) -> None:
    dev.start()
    assert len(_children_using(dev.data_dir)) == 2  # postgres postmaster and weed

    assert dev.interrupt() == 0

    assert _children_using(dev.data_dir) == []


def test_children_do_not_outlive_a_killed_dev(dev: DevRun) -> None:
    dev.start()
    assert dev.process is not None

    dev.process.kill()
    dev.process.wait()

    assert _wait_no_children(dev.data_dir, 15) == []


async def test_data_survives_a_restart(dev: DevRun) -> None:
    dev.start()
    conn = await asyncpg.connect(dev.postgres_dsn)
    try:
        await conn.execute("CREATE TABLE restart_probe (note text)")
        await conn.execute("INSERT INTO restart_probe VALUES ('kept')")
    finally:
        await conn.close()
    await asyncio.to_thread(_put_object, dev.s3_client())
    assert dev.interrupt() == 0

    dev.start()

    conn = await asyncpg.connect(dev.postgres_dsn)
    try:
        assert await conn.fetchval("SELECT note FROM restart_probe") == "kept"
    finally:
        await conn.close()
    body = await asyncio.to_thread(_get_object, dev.s3_client())
    assert body == b"kept across restarts"


def _put_object(client: Minio) -> None:
    import io

    data = b"kept across restarts"
    client.put_object("modelregistry", "probe/object", io.BytesIO(data), len(data))


def _get_object(client: Minio) -> bytes:
    response = client.get_object("modelregistry", "probe/object")
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def test_the_printed_exports_work_from_another_directory(dev: DevRun, tmp_path: Path) -> None:
    # The "In another shell:" block, pasted into a shell somewhere else: its exports find the
    # registry and its admin token without the data dir being under the current directory.
    dev.start()
    block = dev.output().split("In another shell:", 1)[1].split("Stop with Ctrl-C.", 1)[0]
    exports = [line.strip() for line in block.splitlines() if line.strip().startswith("export ")]
    assert any(line.startswith("export MODELREG_TOKEN=") for line in exports), block
    token = (dev.data_dir / "admin-token").read_text().strip()
    assert token not in "\n".join(exports), "the exports read the token file; they do not hold it"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    modelreg = Path(sys.executable).parent / "modelreg"
    script = "\n".join([*exports, f"{modelreg} --json whoami"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    ran = subprocess.run(
        ["bash", "-ec", script], cwd=elsewhere, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["role"] == "ROLE_ADMIN"
