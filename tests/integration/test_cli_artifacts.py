"""`modelreg upload` / `download` / `artifacts` and the transfer helpers against a real server.

The CLI runs in-process through typer's CliRunner in a worker thread (the server serves on the
test's event loop). Broken streams are real: a TCP proxy on the same loop drops the connection
after a number of bytes, once, and the helpers must resume to an identical file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from typer.testing import CliRunner, Result

from modelregistry import client, transfer
from modelregistry.cli.main import app
from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1 import artifact_service_pb2_grpc

MiB = 1024 * 1024


async def cli(target: str, *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, [*args, "--target", target])


async def cli_json(target: str, *args: str) -> Any:
    result = await cli(target, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


async def new_version(target: str, model: str = "demo") -> str:
    await cli_json(target, "models", "create", model)
    created = await cli_json(target, "versions", "create", model)
    return str(created["name"])


async def test_upload_a_version_then_download_and_verify_it(
    registry_target: str, tmp_path: Path
) -> None:
    t = registry_target
    version = await new_version(t)
    assert version == "models/demo/versions/1"
    src = tmp_path / "src"
    shard_a = random_file(src / "model-00001.safetensors", 3 * MiB + 17)
    shard_b = random_file(src / "model-00002.safetensors", 2 * MiB)
    config = b'{"hidden_size": 4096}\n'
    (src / "config.json").write_bytes(config)

    # Two files under a directory prefix, then one file at an explicit path.
    uploaded = await cli_json(
        t, "upload", "demo/1", "weights",
        str(src / "model-00001.safetensors"), str(src / "model-00002.safetensors"),
        "--no-progress",
    )  # fmt: skip
    paths = [a["path"] for a in uploaded["artifacts"]]
    assert paths == ["weights/model-00001.safetensors", "weights/model-00002.safetensors"]
    assert uploaded["artifacts"][0]["sha256"] == hashlib.sha256(shard_a).hexdigest()
    single = await cli(
        t, "upload", "demo/1", "config.json", str(src / "config.json"), "--no-progress"
    )
    assert single.exit_code == 0, single.output
    assert "config.json" in single.stdout

    # The same content again goes through the content-addressed path.
    again = await cli_json(
        t, "upload", "demo/1", "copy/a.safetensors", str(src / "model-00001.safetensors"),
        "--no-progress",
    )  # fmt: skip
    assert again["artifacts"][0]["sha256"] == hashlib.sha256(shard_a).hexdigest()

    listed = await cli_json(t, "artifacts", "list", "demo/1")
    assert [a["path"] for a in listed["artifacts"]] == [
        "config.json",
        "copy/a.safetensors",
        "weights/model-00001.safetensors",
        "weights/model-00002.safetensors",
    ]
    deleted = await cli(t, "artifacts", "delete", "demo/1/copy/a.safetensors")
    assert deleted.exit_code == 0, deleted.output

    # The whole version, verified against its manifest.
    out = tmp_path / "out"
    got = await cli_json(t, "download", "demo/1", "--out", str(out), "--no-progress")
    assert got["manifestVerified"] is True
    assert got["manifestDigest"].startswith("sha256:")
    assert [f["path"] for f in got["files"]] == [
        "config.json",
        "weights/model-00001.safetensors",
        "weights/model-00002.safetensors",
    ]
    assert (out / "weights" / "model-00001.safetensors").read_bytes() == shard_a
    assert (out / "weights" / "model-00002.safetensors").read_bytes() == shard_b
    assert (out / "config.json").read_bytes() == config
    assert sorted(p.name for p in out.rglob("*")) == sorted(
        ["config.json", "weights", "model-00001.safetensors", "model-00002.safetensors"]
    )  # no temporary files left behind

    version_json = await cli_json(t, "versions", "get", "demo/1")
    assert version_json["manifestDigest"] == got["manifestDigest"]

    # Human output names the digest; one file or one directory on request.
    human = await cli(
        t, "download", "demo/1", "weights", "--out", str(tmp_path / "h"), "--no-progress"
    )
    assert human.exit_code == 0, human.output
    assert got["manifestDigest"] in human.stdout
    assert "verified" in human.stdout
    assert (tmp_path / "h" / "weights" / "model-00002.safetensors").read_bytes() == shard_b
    assert not (tmp_path / "h" / "config.json").exists()

    missing = await cli(
        t, "download", "demo/1", "nope.bin", "--out", str(tmp_path / "m"), "--no-progress"
    )
    assert missing.exit_code == 3, missing.output
    assert missing.stderr.startswith("error: ")


async def test_cli_errors_keep_the_exit_code_conventions(
    registry_target: str, tmp_path: Path
) -> None:
    t = registry_target
    await new_version(t)
    f = tmp_path / "a.bin"
    f.write_bytes(b"x")
    first = await cli(t, "upload", "demo/1", "a.bin", str(f), "--no-progress")
    assert first.exit_code == 0, first.output
    duplicate = await cli(t, "upload", "demo/1", "a.bin", str(f), "--no-progress")
    assert duplicate.exit_code == 4, duplicate.output  # ALREADY_EXISTS
    assert duplicate.stderr.startswith("error: ALREADY_EXISTS")
    bad_path = await cli(t, "upload", "demo/1", "../a.bin", str(f), "--no-progress")
    assert bad_path.exit_code == 6, bad_path.output  # INVALID_ARGUMENT
    no_version = await cli(t, "download", "demo/9", "--out", str(tmp_path / "o"), "--no-progress")
    assert no_version.exit_code == 3, no_version.output
    bad_ref = await cli(t, "upload", "demo", "a.bin", str(f))
    assert bad_ref.exit_code == 2, bad_ref.output


# --- broken streams -----------------------------------------------------------------------------


class DroppingProxy:
    """A TCP proxy that cuts its connections: when armed, after `after` bytes in one direction;
    or at once with `cut()`. `throttle_up` (bytes/s) slows the client-to-server direction."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.direction = ""
        self.budget = 0
        self.drops = 0
        self.throttle_up: float | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    def arm(self, direction: str, after: int) -> None:
        self.direction, self.budget = direction, after

    def cut(self) -> None:
        self.drops += 1
        for w in list(self._writers):
            w.transport.abort()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        try:
            yield f"127.0.0.1:{port}"
        finally:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self.host, self.port)
        pair = (client_w, server_w)
        self._writers.update(pair)
        await asyncio.gather(
            self._pump(client_r, server_w, "up", pair),
            self._pump(server_r, client_w, "down", pair),
            return_exceptions=True,
        )
        self._writers.difference_update(pair)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: str,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await reader.read(256 * 1024):
                if self.direction == direction and self.budget > 0:
                    self.budget -= len(data)
                    if self.budget <= 0:
                        self.direction = ""
                        self.drops += 1
                        for w in pair:
                            w.transport.abort()
                        return
                writer.write(data)
                await writer.drain()
                if direction == "up" and self.throttle_up:
                    await asyncio.sleep(len(data) / self.throttle_up)
        except (ConnectionError, OSError):
            pass
        finally:
            for w in pair:
                w.transport.abort()


class RecordingStub:
    """The generated stub, noting where each Write stream starts and each Download asks."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        self.write_starts: list[int] = []
        self.downloads: list[tuple[int, int]] = []
        self.events: list[str] = []
        self.upload_id = ""

    def StartUpload(self, request: Any, **kwargs: Any) -> Any:
        session = self._stub.StartUpload(request, **kwargs)
        self.upload_id = session.upload_id
        return session

    def QueryUpload(self, request: Any, **kwargs: Any) -> Any:
        found = self._stub.QueryUpload(request, **kwargs)
        self.events.append(f"query: {found.committed_size}")
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)

    def Write(self, requests: Iterator[Any], **kwargs: Any) -> Any:
        first = next(requests)
        self.write_starts.append(first.offset)
        try:
            return self._stub.Write(itertools.chain([first], requests), **kwargs)
        except grpc.RpcError as error:
            self.events.append(f"write at {first.offset}: {error.code()} {error.details()}")
            raise

    def Download(self, request: Any, **kwargs: Any) -> Any:
        self.downloads.append((request.offset, request.length))
        return self._stub.Download(request, **kwargs)

    def as_stub(self) -> artifact_service_pb2_grpc.ArtifactServiceStub:
        """This recorder where transfer takes the generated stub, whose methods it has."""
        return cast(artifact_service_pb2_grpc.ArtifactServiceStub, self)


@pytest.mark.timeout(300)
async def test_transfers_resume_across_dropped_connections(
    registry_target: str, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    version = await new_version(registry_target, "resume")
    size = 48 * MiB + 5
    data = random_file(tmp_path / "big.bin", size)
    proxy = DroppingProxy(registry_target)
    async with proxy.running() as through_proxy:
        proxied = client.connect(through_proxy)
        try:
            stub = RecordingStub(proxied)

            # Upload, slowed to ~40 MB/s: once the server has committed a part (16 MiB) the
            # connection is cut; the helper must resume from the committed size, not from 0.
            proxy.throttle_up = 40e6
            done: list[int] = []
            uploading = asyncio.create_task(
                asyncio.to_thread(
                    transfer.upload_file,
                    stub.as_stub(),
                    version,
                    "weights/big.bin",
                    tmp_path / "big.bin",
                    progress=lambda d, _t: done.append(d),
                )
            )
            direct = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
            committed = 0
            while committed < 16 * MiB:
                assert not uploading.done(), "the upload finished before the cut"
                await asyncio.sleep(0.02)
                if stub.upload_id:
                    query = apb.QueryUploadRequest(upload_id=stub.upload_id)
                    committed = (await direct.QueryUpload(query)).committed_size
            proxy.cut()
            proxy.throttle_up = None
            artifact = await uploading
            assert proxy.drops == 1
            assert artifact.sha256 == hashlib.sha256(data).hexdigest()
            assert artifact.size_bytes == size
            assert stub.write_starts[0] == 0
            assert len(stub.write_starts) >= 2, stub.events
            assert stub.write_starts[-1] >= committed, stub.events  # the stream that finished
            assert done[-1] == size

            # Parallel download: the connection (all ranges share it) drops after 20 MiB
            # came down; every range resumes where it stopped.
            proxy.arm("down", 20 * MiB)
            dest = tmp_path / "out" / "big.bin"
            got = await asyncio.to_thread(
                transfer.download_file,
                stub.as_stub(),
                artifact.name,
                dest,
                streams=4,
                parallel_threshold=8 * MiB,
                expected_sha256=hashlib.sha256(data).hexdigest(),
            )
            assert proxy.drops == 2
            assert got.sha256 == artifact.sha256
            assert dest.read_bytes() == data
            assert os.listdir(dest.parent) == ["big.bin"]
            resumed = stub.downloads[4:]
            assert resumed, stub.downloads
            assert all(offset > 0 for offset, _ in resumed)

            # Single stream, same story.
            proxy.arm("down", 10 * MiB)
            single = tmp_path / "single" / "big.bin"
            await asyncio.to_thread(
                transfer.download_file, stub.as_stub(), artifact.name, single, streams=1
            )
            assert proxy.drops == 3
            assert single.read_bytes() == data
        finally:
            proxied.close()
