"""The transfer helpers: pure pieces, then the client's resume logic against a fake service.

The fake is an in-memory ArtifactService behind a real gRPC server in this process. It stands
in for the registry only to break streams on cue (the real server, with PostgreSQL and S3, is
exercised in tests/integration/test_cli_artifacts.py); what it checks is the client's side of
the protocol: where it resumes, what it retries, what it leaves on disk.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st

from modelregistry import client, transfer
from modelregistry.cli import artifacts as cli_artifacts
from modelregistry.v1 import (
    artifact_pb2,
    artifact_service_pb2,
    artifact_service_pb2_grpc,
)

MiB = 1024 * 1024

# --- ranges ---------------------------------------------------------------------------------


@given(
    size=st.integers(min_value=0, max_value=10**10),
    streams=st.integers(min_value=1, max_value=16),
    align=st.sampled_from([1, 7, 4096, MiB]),
)
def test_ranges_cover_the_file_exactly_on_aligned_boundaries(
    size: int, streams: int, align: int
) -> None:
    ranges = transfer.split_ranges(size, streams, align)
    assert len(ranges) <= streams
    position = 0
    for start, end in ranges:
        assert start == position
        assert end > start
        assert start % align == 0
        position = end
    assert position == size
    if size:
        assert len(ranges) == min(streams, -(-size // align))


def test_ranges_are_balanced() -> None:
    assert transfer.split_ranges(10 * MiB, 4) == [
        (0, 3 * MiB),
        (3 * MiB, 6 * MiB),
        (6 * MiB, 8 * MiB),
        (8 * MiB, 10 * MiB),
    ]
    assert transfer.split_ranges(MiB + 1, 4) == [(0, MiB), (MiB, MiB + 1)]
    assert transfer.split_ranges(0, 4) == []


def test_ranges_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="streams"):
        transfer.split_ranges(10, 0)
    with pytest.raises(ValueError, match="size"):
        transfer.split_ranges(-1, 2)


# --- destinations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ".", "..", "", "a/", "a\x00b", "a/.."],
)
def test_destination_refuses_paths_that_escape_or_are_malformed(tmp_path: Path, path: str) -> None:
    with pytest.raises(transfer.UnsafePath):
        transfer.safe_destination(tmp_path, path)


def test_destination_keeps_relative_paths(tmp_path: Path) -> None:
    assert transfer.safe_destination(tmp_path, "a/b/c.bin") == tmp_path.resolve() / "a/b/c.bin"
    assert transfer.safe_destination(tmp_path, "..hidden") == tmp_path.resolve() / "..hidden"


def test_destination_refuses_a_symlink_out_of_the_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "weights").symlink_to(outside)
    with pytest.raises(transfer.UnsafePath, match="outside"):
        transfer.safe_destination(root, "weights/model.bin")


# --- backoff ----------------------------------------------------------------------------------


def test_backoff_doubles_from_a_fifth_of_a_second_up_to_five_with_jitter() -> None:
    rng = random.Random(7)
    ceilings = [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delays = [transfer.backoff_delay(attempt, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not fixed
    with pytest.raises(ValueError, match="attempt"):
        transfer.backoff_delay(0)


def test_backoff_total_for_the_default_retries_stays_bounded() -> None:
    worst = sum(min(5.0, 0.2 * 2 ** (a - 1)) for a in range(1, transfer.DEFAULT_RETRIES + 1))
    assert worst == pytest.approx(21.2)


# --- manifest digest, CLI pure pieces ---------------------------------------------------------


def test_manifest_digest_follows_the_documented_lines() -> None:
    entries = [
        artifact_pb2.ManifestEntry(path="b.bin", size_bytes=3, sha256="bb"),
        artifact_pb2.ManifestEntry(path="a/x.json", size_bytes=10, sha256="aa"),
    ]
    text = "aa  10  a/x.json\nbb  3  b.bin\n"
    assert transfer.manifest_digest(entries) == (
        "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    )


def test_upload_targets(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "sub" / "b.bin"
    assert cli_artifacts.upload_targets("w/model.bin", [a]) == [(a, "w/model.bin")]
    assert cli_artifacts.upload_targets("w/", [a]) == [(a, "w/a.bin")]
    assert cli_artifacts.upload_targets("w", [a, b]) == [(a, "w/a.bin"), (b, "w/b.bin")]
    assert cli_artifacts.upload_targets(".", [a, b]) == [(a, "a.bin"), (b, "b.bin")]
    with pytest.raises(Exception, match="both"):
        cli_artifacts.upload_targets("w", [a, tmp_path / "other" / "a.bin"])


def test_artifact_references() -> None:
    assert cli_artifacts.artifact_name("m/3/w/a.bin") == "models/m/versions/3/artifacts/w/a.bin"
    full = "models/m/versions/3/artifacts/w/a.bin"
    assert cli_artifacts.artifact_name(full) == full
    for bad in ("m/3", "m//a", "models/m/versions/3/a.bin"):
        with pytest.raises(Exception, match="does not name an artifact"):
            cli_artifacts.artifact_name(bad)


def test_select_by_file_or_directory() -> None:
    w = cli_artifacts._Wanted
    entries = [w("config.json", 1, ""), w("weights/a", 1, ""), w("weights2/b", 1, "")]
    assert cli_artifacts.select(entries, None) == entries
    assert [e.path for e in cli_artifacts.select(entries, "weights")] == ["weights/a"]
    assert [e.path for e in cli_artifacts.select(entries, "weights/")] == ["weights/a"]
    assert [e.path for e in cli_artifacts.select(entries, "config.json")] == ["config.json"]


# --- the client's side of the protocol, against a fake service ---------------------------------

PART = 3 * MiB  # the fake commits in parts, so committed_size lags what was sent


@dataclass
class _Session:
    id: str
    path: str
    declared_size: int
    declared_sha: str
    data: bytearray = field(default_factory=bytearray)
    committed: int = 0
    state: int = artifact_pb2.UploadSession.STATE_ACTIVE
    result: artifact_pb2.Artifact | None = None


class FakeArtifacts(artifact_service_pb2_grpc.ArtifactServiceServicer):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, _Session] = {}
        self.blobs: dict[str, bytes] = {}
        self.artifacts: dict[str, tuple[artifact_pb2.Artifact, bytes]] = {}
        self.write_starts: list[int] = []  # first offset of each Write stream
        self.break_writes: list[int] = []  # for each next Write: messages before it breaks
        self.break_downloads: list[int] = []  # same for Download data messages
        self.wrong_offset_once = False
        self.corrupt_downloads = False
        self.download_requests: list[tuple[int, int]] = []

    def _session(self, s: _Session) -> artifact_pb2.UploadSession:
        return artifact_pb2.UploadSession(
            upload_id=s.id,
            artifact=s.path,
            committed_size=s.committed,
            declared_size_bytes=s.declared_size,
            declared_sha256=s.declared_sha,
            chunk_size_bytes=MiB,
            state=s.state,  # type: ignore[arg-type]
            result=s.result,
        )

    def _commit(self, s: _Session) -> artifact_pb2.Artifact:
        content = bytes(s.data)
        sha = hashlib.sha256(content).hexdigest()
        artifact = artifact_pb2.Artifact(
            name=s.path,
            path=s.path.rsplit("/artifacts/", 1)[1],
            size_bytes=len(content),
            sha256=sha,
        )
        self.blobs[sha] = content
        self.artifacts[s.path] = (artifact, content)
        s.state, s.result, s.committed = (
            artifact_pb2.UploadSession.STATE_COMMITTED,
            artifact,
            len(content),
        )
        return artifact

    def StartUpload(self, request: Any, context: Any) -> artifact_pb2.UploadSession:
        with self.lock:
            name = f"{request.parent}/artifacts/{request.path}"
            s = _Session(f"u{len(self.sessions)}", name, request.size_bytes, request.sha256)
            self.sessions[s.id] = s
            if request.sha256 in self.blobs:
                s.data[:] = self.blobs[request.sha256]
                self._commit(s)
            return self._session(s)

    def QueryUpload(self, request: Any, context: Any) -> artifact_pb2.UploadSession:
        with self.lock:
            return self._session(self.sessions[request.upload_id])

    def Write(self, requests: Iterator[Any], context: Any) -> Any:
        limit = self.break_writes.pop(0) if self.break_writes else None
        s: _Session | None = None
        for count, request in enumerate(requests):
            with self.lock:
                s = self.sessions[request.upload_id]
                if count == 0:
                    self.write_starts.append(request.offset)
                    if self.wrong_offset_once:
                        self.wrong_offset_once = False
                        context.abort_with_status(_wrong_offset(s.committed))
                if request.offset != len(s.data):
                    context.abort_with_status(_wrong_offset(s.committed))
                s.data += request.data
                if len(s.data) - s.committed >= PART:
                    s.committed = len(s.data) - (len(s.data) % PART)
                if limit is not None and count + 1 >= limit:
                    del s.data[s.committed :]  # the part in flight is lost
                    context.abort(grpc.StatusCode.UNAVAILABLE, "connection dropped")
                if request.finish:
                    if s.declared_size not in (-1, len(s.data)):
                        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "size")
                    if s.declared_sha and hashlib.sha256(s.data).hexdigest() != s.declared_sha:
                        s.state = artifact_pb2.UploadSession.STATE_ABORTED
                        context.abort(grpc.StatusCode.DATA_LOSS, "sha256 mismatch")
                    artifact = self._commit(s)
                    return artifact_service_pb2.WriteResponse(
                        committed_size=s.committed, artifact=artifact
                    )
        with self.lock:
            if s is not None:
                del s.data[s.committed :]
            return artifact_service_pb2.WriteResponse(committed_size=s.committed if s else 0)

    def Download(self, request: Any, context: Any) -> Iterator[Any]:
        limit = self.break_downloads.pop(0) if self.break_downloads else None
        artifact, content = self.artifacts[request.name]
        self.download_requests.append((request.offset, request.length))
        yield artifact_service_pb2.DownloadResponse(artifact=artifact)
        end = (
            len(content)
            if not request.length
            else min(len(content), request.offset + request.length)
        )
        for sent, pos in enumerate(range(request.offset, end, MiB)):
            if limit is not None and sent >= limit:
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection dropped")
            chunk = content[pos : min(pos + MiB, end)]
            if self.corrupt_downloads:
                chunk = bytes([chunk[0] ^ 1]) + chunk[1:]
            yield artifact_service_pb2.DownloadResponse(data=chunk)


def _wrong_offset(committed: int) -> Any:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.ErrorInfo(
            reason="WRONG_OFFSET",
            domain="modelregistry.io",
            metadata={"committed_size": str(committed)},
        )
    )
    status = status_pb2.Status(
        code=code_pb2.FAILED_PRECONDITION, message="wrong offset", details=[detail]
    )
    return rpc_status.to_status(status)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeArtifacts, grpc.Channel]]:
    monkeypatch.setattr(transfer, "backoff_delay", lambda attempt, **_: 0.01)  # fast retries
    # The generated base answers UNIMPLEMENTED for the methods the fake leaves out; the
    # mypy-protobuf stubs declare them abstract.
    servicer = FakeArtifacts()  # type: ignore[abstract]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=client.CHANNEL_OPTIONS)
    artifact_service_pb2_grpc.add_ArtifactServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = client.connect(f"127.0.0.1:{port}")
    try:
        yield servicer, channel
    finally:
        channel.close()
        server.stop(None).wait()


def _file(path: Path, size: int, seed: int = 1) -> bytes:
    content = random.Random(seed).randbytes(size)
    path.write_bytes(content)
    return content


VERSION = "models/m/versions/1"


def test_upload_resumes_from_the_committed_size_never_from_zero(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    content = _file(tmp_path / "w.bin", 10 * MiB + 123)
    servicer.break_writes = [5, 2]  # breaks after 5 chunks (3 MiB committed), then 2 more
    seen: list[tuple[int, int]] = []
    artifact = transfer.upload_file(
        channel, VERSION, "w.bin", tmp_path / "w.bin", progress=lambda d, t: seen.append((d, t))
    )
    assert artifact.sha256 == hashlib.sha256(content).hexdigest()
    assert servicer.artifacts[artifact.name][1] == content
    assert servicer.write_starts == [0, 3 * MiB, 3 * MiB]
    assert seen[-1] == (len(content), len(content))


def test_upload_resyncs_on_a_wrong_offset(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    content = _file(tmp_path / "w.bin", 2 * MiB)
    servicer.wrong_offset_once = True
    artifact = transfer.upload_file(channel, VERSION, "w.bin", tmp_path / "w.bin")
    assert servicer.artifacts[artifact.name][1] == content
    assert servicer.write_starts == [0, 0]


def test_known_content_is_not_sent_again(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    _file(tmp_path / "w.bin", 2 * MiB)
    transfer.upload_file(channel, VERSION, "a.bin", tmp_path / "w.bin")
    again = transfer.upload_file(channel, VERSION, "b.bin", tmp_path / "w.bin")
    assert again.path == "b.bin"
    assert servicer.write_starts == [0]  # one stream: the second upload sent nothing


def test_an_empty_file_is_one_finishing_message(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    _, channel = fake
    (tmp_path / "empty").write_bytes(b"")
    artifact = transfer.upload_file(channel, VERSION, "empty", tmp_path / "empty")
    assert artifact.size_bytes == 0
    assert artifact.sha256 == hashlib.sha256(b"").hexdigest()
    transfer.download_file(channel, artifact.name, tmp_path / "out" / "empty")
    assert (tmp_path / "out" / "empty").read_bytes() == b""


def test_data_loss_is_final(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer, channel = fake
    _file(tmp_path / "w.bin", MiB)
    monkeypatch.setattr(transfer, "sha256_file", lambda path, progress=None: "ab" * 32)
    with pytest.raises(grpc.RpcError) as raised:
        transfer.upload_file(channel, VERSION, "w.bin", tmp_path / "w.bin")
    assert raised.value.code() is grpc.StatusCode.DATA_LOSS
    assert servicer.write_starts == [0]


def test_too_many_breaks_give_up_with_the_last_error(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    _file(tmp_path / "w.bin", 2 * MiB)
    servicer.break_writes = [1] * 10  # never reaches a committed part: no progress
    with pytest.raises(grpc.RpcError) as raised:
        transfer.upload_file(channel, VERSION, "w.bin", tmp_path / "w.bin", retries=3)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    assert len(servicer.write_starts) == 4


def _stored(servicer: FakeArtifacts, path: str, content: bytes) -> str:
    name = f"{VERSION}/artifacts/{path}"
    sha = hashlib.sha256(content).hexdigest()
    artifact = artifact_pb2.Artifact(name=name, path=path, size_bytes=len(content), sha256=sha)
    servicer.artifacts[name] = (artifact, content)
    return name


def test_parallel_download_resumes_each_range(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    content = random.Random(3).randbytes(20 * MiB + 5)
    name = _stored(servicer, "big.bin", content)
    servicer.break_downloads = [None, 2, 1, 3]  # type: ignore[list-item]
    done: list[int] = []
    artifact = transfer.download_file(
        channel,
        name,
        tmp_path / "big.bin",
        streams=4,
        parallel_threshold=4 * MiB,
        progress=lambda d, t: done.append(d),
        expected_sha256=hashlib.sha256(content).hexdigest(),
    )
    assert artifact.size_bytes == len(content)
    assert (tmp_path / "big.bin").read_bytes() == content
    assert done[-1] == len(content)
    assert os.listdir(tmp_path) == ["big.bin"]
    # The first stream (whole file) served range 0; ranges resumed where they stopped.
    assert servicer.download_requests[0] == (0, 0)
    assert len(servicer.download_requests) == 4 + 3
    resumed = servicer.download_requests[4:]
    assert all(offset % MiB == 0 and offset > 0 for offset, _ in resumed)


def test_single_stream_download_resumes(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    content = random.Random(4).randbytes(5 * MiB + 1)
    name = _stored(servicer, "w.bin", content)
    servicer.break_downloads = [2, 1]
    transfer.download_file(channel, name, tmp_path / "w.bin")
    assert (tmp_path / "w.bin").read_bytes() == content
    assert servicer.download_requests == [
        (0, 0),
        (2 * MiB, 5 * MiB + 1 - 2 * MiB),
        (3 * MiB, 2 * MiB + 1),
    ]


@pytest.mark.parametrize("size", [MiB, 9 * MiB])
def test_a_corrupt_download_leaves_no_file(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path, size: int
) -> None:
    servicer, channel = fake
    name = _stored(servicer, "w.bin", random.Random(5).randbytes(size))
    servicer.corrupt_downloads = True
    (tmp_path / "w.bin").write_bytes(b"previous")
    with pytest.raises(transfer.ChecksumMismatch, match="SHA-256"):
        transfer.download_file(channel, name, tmp_path / "w.bin", parallel_threshold=4 * MiB)
    assert os.listdir(tmp_path) == ["w.bin"]
    assert (tmp_path / "w.bin").read_bytes() == b"previous"  # the old file is untouched


def test_an_unexpected_digest_leaves_no_file(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    name = _stored(servicer, "w.bin", b"hello")
    with pytest.raises(transfer.ChecksumMismatch, match="expected"):
        transfer.download_file(channel, name, tmp_path / "w.bin", expected_sha256="0" * 64)
    assert os.listdir(tmp_path) == []


def test_several_files_go_at_once_and_one_failure_leaves_the_others_done(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    _, channel = fake
    contents = {
        f"f{i}.bin": _file(tmp_path / f"f{i}.bin", (i + 1) * MiB + i, seed=i) for i in range(5)
    }
    items = [transfer.UploadItem(tmp_path / name, name) for name in contents]
    uploaded = transfer.upload_files(channel, VERSION, items, parallel=3)
    assert [a.path for a in uploaded] == list(contents)

    wanted = [
        transfer.DownloadItem(f"{VERSION}/artifacts/{name}", tmp_path / "out" / name)
        for name in [*contents, "missing.bin"]
    ]
    with pytest.raises(transfer.TransfersFailed) as failed:
        transfer.download_files(channel, wanted, parallel=3)
    assert list(failed.value.failures) == [f"{VERSION}/artifacts/missing.bin"]
    assert failed.value.completed == 5
    for name, content in contents.items():
        assert (tmp_path / "out" / name).read_bytes() == content
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(contents)


def test_a_cancelled_upload_ends_its_stream_and_keeps_the_session(
    fake: tuple[FakeArtifacts, grpc.Channel], tmp_path: Path
) -> None:
    servicer, channel = fake
    _file(tmp_path / "w.bin", 12 * MiB)
    cancel = threading.Event()

    def progress(done: int, _total: int) -> None:
        if done >= 4 * MiB:
            cancel.set()

    with pytest.raises(transfer.TransferError, match="cancelled"):
        transfer.upload_file(
            channel, VERSION, "w.bin", tmp_path / "w.bin", progress=progress, cancel=cancel
        )
    (session,) = servicer.sessions.values()
    assert session.state == artifact_pb2.UploadSession.STATE_ACTIVE
    assert len(servicer.write_starts) == 1  # no retry after a cancel
