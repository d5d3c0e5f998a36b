"""ArtifactService through the generated client against a real server, PostgreSQL and S3:
round trips, resumable writes, integrity checks, content addressing, ranged downloads, path
rules, the lifecycle freeze, write-session errors, concurrent writers and garbage collection.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import uuid
from collections.abc import Awaitable
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from integration import helpers
from integration.artifact_helpers import (
    ABORTED,
    ACTIVE,
    BLOB_PREFIX,
    COMMITTED,
    MIB,
    PART,
    Artifacts,
    LocalFile,
    ResumeLog,
    Session,
    artifact_name,
    assert_download_matches,
    bucket_objects,
    committed_size_detail,
    download,
    list_artifacts,
    multipart_uploads,
    new_version,
    query,
    resume_upload,
    run_gc,
    sha256_hex,
    start_upload,
    upload,
    wait_committed,
    write,
    write_requests,
    write_then_break,
)
from integration.helpers import Stub, assert_clean_message, transition
from support.stores import StoreEndpoints

from modelregistry.v1 import artifact_service_pb2 as apb
from modelregistry.v1 import model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb

BIG = 256 * MIB
READY = model_version_pb2.MODEL_VERSION_STATUS_READY
PENDING = model_version_pb2.MODEL_VERSION_STATUS_PENDING


@pytest.fixture
def artifacts(channel: grpc.aio.Channel) -> Artifacts:
    return Artifacts(channel)


@pytest.fixture
async def version(registry: Stub) -> str:
    return await new_version(registry)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> LocalFile:
    """256 MiB of random bytes on disk, made once for the module."""
    return LocalFile.random(tmp_path_factory.mktemp("big") / "big.bin", BIG)


async def _code_of(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert_clean_message(caught.value.details() or "")
    return caught.value.code()


# -- round trip and resume -------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_a_256_mib_file_round_trips_byte_identical(
    artifacts: Artifacts, version: str, big_file: LocalFile
) -> None:
    session = await start_upload(
        artifacts, version, "weights/model.safetensors", big_file, declare_sha256=False
    )
    assert session.state == ACTIVE
    assert session.committed_size == 0
    assert session.declared_size_bytes == BIG
    assert session.chunk_size_bytes == MIB
    assert session.artifact == artifact_name(version, "weights/model.safetensors")

    response = await write(artifacts, session.upload_id, big_file)

    artifact = response.artifact
    assert response.committed_size == BIG
    assert artifact.sha256 == big_file.sha256  # what sha256sum prints
    assert artifact.size_bytes == BIG
    assert artifact.path == "weights/model.safetensors"
    assert artifact.name == session.artifact
    assert artifact.content_type == "application/octet-stream"
    assert await artifacts.GetArtifact(apb.GetArtifactRequest(name=artifact.name)) == artifact
    assert await list_artifacts(artifacts, version) == [artifact]
    assert (await query(artifacts, session.upload_id)).state == COMMITTED

    downloaded = await assert_download_matches(artifacts, artifact.name, big_file)
    assert downloaded == artifact


@pytest.mark.timeout(300)
async def test_a_stream_broken_at_a_random_offset_resumes_to_the_identical_file(
    artifacts: Artifacts, version: str, big_file: LocalFile
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    broken_at = rng.randrange(2 * PART, BIG - MIB)  # not chunk-aligned, as cuts are
    # No declared size: the parts are the standard 16 MiB, so the loss is bounded exactly.
    session = await start_upload(artifacts, version, "model.bin", big_file, declare_size=False)

    async def some_part_stored() -> None:
        await wait_committed(artifacts, session.upload_id, PART)

    await write_then_break(
        artifacts, session.upload_id, big_file, 0, broken_at, before_break=some_part_stored
    )

    after_break = await query(artifacts, session.upload_id)
    context = f"seed={seed} broken_at={broken_at} committed={after_break.committed_size}"
    assert after_break.state == ACTIVE, context
    assert PART <= after_break.committed_size <= broken_at, context
    assert after_break.committed_size % PART == 0, context
    assert await list_artifacts(artifacts, version) == [], "a half-uploaded file is visible"

    log = ResumeLog()
    artifact = await resume_upload(artifacts, session.upload_id, big_file, log=log)

    assert log.resumed_at[0] >= after_break.committed_size, context  # never decreases
    assert artifact.sha256 == big_file.sha256, context
    assert artifact.size_bytes == BIG
    await assert_download_matches(artifacts, artifact.name, big_file)


# -- integrity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("sha256", grpc.StatusCode.DATA_LOSS),
        ("size_larger", grpc.StatusCode.INVALID_ARGUMENT),
        ("size_smaller", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_a_declared_digest_or_size_that_does_not_match_leaves_nothing(
    artifacts: Artifacts,
    version: str,
    tmp_path: Path,
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
    declared: str,
    expected: grpc.StatusCode,
) -> None:
    file = LocalFile.random(tmp_path / "f.bin", PART + 3 * MIB + 17)  # two storage parts
    # (sha256, size_bytes) to declare; "" and None declare the file's own.
    wrong_sha256, wrong_size = {
        "sha256": (sha256_hex(b"something else"), None),
        "size_larger": ("", file.size + 1),
        "size_smaller": ("", file.size - 1),
    }[declared]
    session = await start_upload(
        artifacts, version, "f.bin", file, sha256=wrong_sha256, size_bytes=wrong_size
    )
    assert session.state == ACTIVE

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await write(artifacts, session.upload_id, file)

    assert caught.value.code() == expected, caught.value.details()
    assert_clean_message(caught.value.details() or "")
    assert await list_artifacts(artifacts, version) == []
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await artifacts.GetArtifact(apb.GetArtifactRequest(name=session.artifact))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    state = (await query(artifacts, session.upload_id)).state
    # Whether refused at finish or as soon as the bytes pass a declared size, the session
    # ends the same way: aborted, as the one change of the call, audited under its name.
    assert state == ABORTED
    last = (await helpers.audit_rows(migrated_database_url))[-1]
    assert (last["action"], last["resource"]) == ("Write", session.artifact)
    assert last["after"]["state"] == "ABORTED"

    run = await run_gc(migrated_database_url, store_endpoints, s3_bucket, "--idle-seconds", "0")
    for _ in range(3):
        # A stream refused mid-way holds its claim until its parts in flight settle (about
        # a second); gc leaves a claimed session alone, so the next pass collects it.
        if (await query(artifacts, session.upload_id)).state != ACTIVE:
            break
        await asyncio.sleep(0.5)
        run = await run_gc(migrated_database_url, store_endpoints, s3_bucket, "--idle-seconds", "0")

    assert await bucket_objects(store_endpoints, s3_bucket) == [], run.summary
    assert await asyncio.to_thread(multipart_uploads, store_endpoints, s3_bucket) == [], (
        f"state before gc: {Session.State.Name(state)}, gc: {run.summary}, "
        f"after gc: {Session.State.Name((await query(artifacts, session.upload_id)).state)}"
    )
    # The aborted upload does not hold the path.
    artifact = await upload(artifacts, version, "f.bin", file)
    assert artifact.sha256 == file.sha256


# -- content addressing ----------------------------------------------------------------------


async def test_the_same_content_is_stored_once_and_a_known_digest_skips_the_transfer(
    artifacts: Artifacts,
    registry: Stub,
    tmp_path: Path,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
) -> None:
    file = LocalFile.random(tmp_path / "shared.bin", 5 * MIB + 3)
    first, second, third = [await new_version(registry) for _ in range(3)]

    a = await upload(artifacts, first, "shared.bin", file)  # undeclared digest: bytes travel
    b = await upload(artifacts, second, "copy/of/shared.bin", file)

    assert a.sha256 == b.sha256 == file.sha256
    assert len(await bucket_objects(store_endpoints, s3_bucket, BLOB_PREFIX)) == 1

    session = await start_upload(artifacts, third, "dedup.bin", file, content_type="x/y")
    assert session.state == COMMITTED, "a declared digest the registry holds must skip Write"
    assert session.result.sha256 == file.sha256
    assert session.result.size_bytes == file.size
    assert session.result.path == "dedup.bin"
    assert session.result.name == artifact_name(third, "dedup.bin")
    assert session.committed_size == file.size
    assert await list_artifacts(artifacts, third) == [session.result]
    # The id works like any other upload's: a client that lost the answer can ask again.
    asked = await query(artifacts, session.upload_id)
    assert asked.state == COMMITTED
    assert asked.result == session.result
    await assert_download_matches(artifacts, session.result.name, file)

    other = LocalFile.random(tmp_path / "other.bin", MIB)
    await upload(artifacts, third, "other.bin", other)
    assert len(await bucket_objects(store_endpoints, s3_bucket, BLOB_PREFIX)) == 2


# -- ranged downloads -----------------------------------------------------------------------

RANGED_SIZE = 3 * MIB + 12_345


@pytest.fixture
async def ranged(artifacts: Artifacts, version: str) -> tuple[str, bytes]:
    """(artifact name, content) of a ~3 MiB file uploaded once per test."""
    data = os.urandom(RANGED_SIZE)
    session = await start_upload(artifacts, version, "ranged.bin", size_bytes=len(data))
    response = await artifacts.Write(
        iter(
            [
                apb.WriteRequest(upload_id=session.upload_id, offset=0, data=data[: 2 * MIB]),
                apb.WriteRequest(
                    upload_id=session.upload_id, offset=2 * MIB, data=data[2 * MIB :], finish=True
                ),
            ]
        )
    )
    assert response.artifact.sha256 == hashlib.sha256(data).hexdigest()
    return response.artifact.name, data


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    offset=st.integers(0, RANGED_SIZE) | st.sampled_from([0, MIB - 1, MIB, RANGED_SIZE - 1]),
    length=st.integers(0, RANGED_SIZE + MIB) | st.sampled_from([0, 1, MIB, MIB + 1]),
)
@example(offset=0, length=0)
@example(offset=RANGED_SIZE, length=0)
@example(offset=RANGED_SIZE - 1, length=10)
async def test_ranged_downloads_equal_the_file_slices(
    artifacts: Artifacts, ranged: tuple[str, bytes], offset: int, length: int
) -> None:
    name, data = ranged
    artifact, got = await download(artifacts, name, offset, length)
    expected = data[offset:] if length == 0 else data[offset : offset + length]
    assert got == expected
    assert artifact.size_bytes == len(data)
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("past", [1, MIB, 1 << 50])
async def test_a_download_starting_past_the_end_is_out_of_range(
    artifacts: Artifacts, version: str, tmp_path: Path, past: int
) -> None:
    file = LocalFile.of_bytes(tmp_path / "small", os.urandom(1000))
    artifact = await upload(artifacts, version, "small", file)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await download(artifacts, artifact.name, file.size + past)
    assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert_clean_message(caught.value.details() or "")
    _, at_end = await download(artifacts, artifact.name, file.size)  # offset == size: nothing
    assert at_end == b""


@pytest.mark.parametrize(("offset", "length"), [(-1, 0), (0, -1)])
async def test_a_negative_download_range_is_invalid(
    artifacts: Artifacts, version: str, tmp_path: Path, offset: int, length: int
) -> None:
    file = LocalFile.of_bytes(tmp_path / "small", os.urandom(1000))
    artifact = await upload(artifacts, version, "small", file)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await download(artifacts, artifact.name, offset, length)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- paths and the lifecycle ----------------------------------------------------------------

BAD_PATHS = {
    "parent": "../x",
    "parent inside": "a/../b",
    "dot-dot": "..",
    "dot": ".",
    "absolute": "/abs",
    "empty segment": "a//b",
    "empty": "",
    "dot segment": "a/./b",
    "trailing slash": "a/",
    "over 1024 bytes": "x" * 1025,
    "over 1024 bytes of UTF-8": "é" * 513,  # 513 characters, 1,026 bytes
    "NUL": "a\x00b",
}


@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=BAD_PATHS.keys())
async def test_a_bad_path_is_invalid_argument(
    artifacts: Artifacts, version: str, path: str
) -> None:
    request = apb.StartUploadRequest(parent=version, path=path, size_bytes=1)
    assert await _code_of(artifacts.StartUpload(request)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await list_artifacts(artifacts, version) == []


GOOD_PATHS = [
    "config.json",
    "weights/model-00001-of-00002.safetensors",
    "tokenizer/é/vocab.txt",
    ("d" * 200 + "/") * 5 + "f" * 19,  # exactly 1,024 bytes
    ".hidden/..dots../x.y",
]


async def test_good_paths_are_accepted_and_listed_in_order(
    artifacts: Artifacts, version: str, tmp_path: Path
) -> None:
    assert len(GOOD_PATHS[3].encode()) == 1024
    file = LocalFile.of_bytes(tmp_path / "tiny", b"tiny")
    for path in GOOD_PATHS:
        artifact = await upload(artifacts, version, path, file)
        assert artifact.path == path
        assert artifact.name == artifact_name(version, path)
        got = await artifacts.GetArtifact(apb.GetArtifactRequest(name=artifact.name))
        assert got.path == path
    listed = await list_artifacts(artifacts, version)
    assert [a.path for a in listed] == sorted(GOOD_PATHS)


async def test_a_version_past_development_takes_no_uploads_and_keeps_its_artifacts(
    artifacts: Artifacts, registry: Stub, version: str, tmp_path: Path
) -> None:
    file = LocalFile.of_bytes(tmp_path / "f", os.urandom(4096))
    artifact = await upload(artifacts, version, "kept.bin", file)
    await transition(registry, version, model_version_pb2.STAGE_STAGING)

    start = artifacts.StartUpload(apb.StartUploadRequest(parent=version, path="late.bin"))
    assert await _code_of(start) == grpc.StatusCode.FAILED_PRECONDITION
    delete = artifacts.DeleteArtifact(apb.DeleteArtifactRequest(name=artifact.name))
    assert await _code_of(delete) == grpc.StatusCode.FAILED_PRECONDITION

    assert await list_artifacts(artifacts, version) == [artifact]
    await assert_download_matches(artifacts, artifact.name, file)


async def test_an_upload_open_when_the_version_leaves_development_cannot_commit(
    artifacts: Artifacts, registry: Stub, version: str, tmp_path: Path
) -> None:
    file = LocalFile.of_bytes(tmp_path / "f", os.urandom(4096))
    session = await start_upload(artifacts, version, "late.bin", file)
    # Whether the move is refused while an upload is open or the upload is refused after
    # it, a version outside DEVELOPMENT must not gain files.
    refused: grpc.StatusCode | None = None
    try:
        await transition(registry, version, model_version_pb2.STAGE_STAGING)
    except grpc.aio.AioRpcError as error:
        refused = error.code()
    if refused is not None:
        assert refused == grpc.StatusCode.FAILED_PRECONDITION
        assert (await query(artifacts, session.upload_id)).state == ACTIVE
        return
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await write(artifacts, session.upload_id, file)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await list_artifacts(artifacts, version) == []


async def test_one_path_holds_one_file_until_its_upload_is_aborted(
    artifacts: Artifacts, version: str, tmp_path: Path
) -> None:
    file = LocalFile.of_bytes(tmp_path / "f", os.urandom(4096))
    open_session = await start_upload(artifacts, version, "a.bin", file)
    again = start_upload(artifacts, version, "a.bin", file)
    assert await _code_of(again) == grpc.StatusCode.ALREADY_EXISTS  # an upload is open

    aborted = await artifacts.AbortUpload(apb.AbortUploadRequest(upload_id=open_session.upload_id))
    assert aborted.state == ABORTED
    artifact = await upload(artifacts, version, "a.bin", file)  # the aborted one frees the path
    assert artifact.sha256 == file.sha256

    twice = start_upload(artifacts, version, "a.bin", file)
    assert await _code_of(twice) == grpc.StatusCode.ALREADY_EXISTS  # the file exists
    assert [a.path for a in await list_artifacts(artifacts, version)] == ["a.bin"]

    await artifacts.DeleteArtifact(apb.DeleteArtifactRequest(name=artifact.name))
    assert await list_artifacts(artifacts, version) == []
    assert (await upload(artifacts, version, "a.bin", file)).sha256 == file.sha256


async def test_a_ready_version_has_a_manifest_and_its_digest(
    artifacts: Artifacts, registry: Stub, version: str, tmp_path: Path
) -> None:
    files = {
        "weights/b.bin": LocalFile.of_bytes(tmp_path / "b", os.urandom(3000)),
        "a.json": LocalFile.of_bytes(tmp_path / "a", b'{"a": 1}'),
    }
    for path, file in files.items():
        await upload(artifacts, version, path, file)
    pending = await start_upload(artifacts, version, "c.bin", size_bytes=10)

    got = await registry.GetModelVersion(pb.GetModelVersionRequest(name=version))
    assert got.status == PENDING  # an upload is open

    await artifacts.AbortUpload(apb.AbortUploadRequest(upload_id=pending.upload_id))
    got = await registry.GetModelVersion(pb.GetModelVersionRequest(name=version))
    assert got.status == READY
    expected = sorted((path, f.size, f.sha256) for path, f in files.items())
    assert [(e.path, e.size_bytes, e.sha256) for e in got.manifest] == expected
    lines = "".join(f"{sha}  {size}  {path}\n" for path, size, sha in expected)
    assert got.manifest_digest == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


# -- write sessions -------------------------------------------------------------------------


async def test_a_write_at_the_wrong_offset_is_refused_with_the_committed_size(
    artifacts: Artifacts, version: str, tmp_path: Path
) -> None:
    file = LocalFile.random(tmp_path / "f", PART + 4 * MIB)
    session = await start_upload(artifacts, version, "f.bin", file)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await write(artifacts, session.upload_id, file, MIB, 2 * MIB, finish=False)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert committed_size_detail(caught.value) == "0"

    # A stream that ends without `finish` keeps what was stored.
    partial = await write(artifacts, session.upload_id, file, 0, PART + MIB, finish=False)
    committed = (await query(artifacts, session.upload_id)).committed_size
    assert partial.committed_size == committed
    assert 0 < committed <= PART + MIB
    assert committed % PART == 0

    for wrong in (0, committed + MIB, committed - MIB):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await write(artifacts, session.upload_id, file, wrong, wrong + MIB, finish=False)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, wrong
        assert committed_size_detail(caught.value) == str(committed), wrong

    # A gap inside one stream is refused too.
    requests = list(write_requests(session.upload_id, file, committed, committed + 2 * MIB))
    requests[1].offset += 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await artifacts.Write(iter(requests))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    artifact = await resume_upload(artifacts, session.upload_id, file)
    assert artifact.sha256 == file.sha256
    await assert_download_matches(artifacts, artifact.name, file)


async def test_a_finished_or_aborted_session_takes_no_more_writes(
    artifacts: Artifacts, version: str, tmp_path: Path
) -> None:
    file = LocalFile.of_bytes(tmp_path / "f", os.urandom(MIB + 5))
    done = await start_upload(artifacts, version, "done.bin", file)
    artifact = (await write(artifacts, done.upload_id, file)).artifact

    after_finish = write(artifacts, done.upload_id, file, file.size)
    assert await _code_of(after_finish) == grpc.StatusCode.FAILED_PRECONDITION
    rewrite = write(artifacts, done.upload_id, file, 0, MIB, finish=False)
    assert await _code_of(rewrite) == grpc.StatusCode.FAILED_PRECONDITION
    abort_done = artifacts.AbortUpload(apb.AbortUploadRequest(upload_id=done.upload_id))
    assert await _code_of(abort_done) == grpc.StatusCode.FAILED_PRECONDITION
    finished = await query(artifacts, done.upload_id)
    assert finished.state == COMMITTED
    assert finished.result == artifact

    other = LocalFile.of_bytes(tmp_path / "other", os.urandom(MIB + 5))
    gone = await start_upload(artifacts, version, "gone.bin", other)
    aborted = await artifacts.AbortUpload(apb.AbortUploadRequest(upload_id=gone.upload_id))
    assert aborted.state == ABORTED
    again = await artifacts.AbortUpload(apb.AbortUploadRequest(upload_id=gone.upload_id))
    assert again.state == ABORTED  # aborting twice is fine
    after_abort = write(artifacts, gone.upload_id, other, 0, MIB, finish=False)
    assert await _code_of(after_abort) == grpc.StatusCode.FAILED_PRECONDITION
    assert (await query(artifacts, gone.upload_id)).state == ABORTED
    assert [a.path for a in await list_artifacts(artifacts, version)] == ["done.bin"]

    unknown = artifacts.QueryUpload(apb.QueryUploadRequest(upload_id=str(uuid.uuid4())))
    assert await _code_of(unknown) == grpc.StatusCode.NOT_FOUND
    garbage = artifacts.QueryUpload(apb.QueryUploadRequest(upload_id="no-such-upload"))
    assert await _code_of(garbage) in (
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_a_second_stream_on_a_session_being_written_is_aborted(
    artifacts: Artifacts, version: str, tmp_path: Path
) -> None:
    file = LocalFile.random(tmp_path / "f", 2 * PART + 5 * MIB)
    session = await start_upload(artifacts, version, "f.bin", file)
    first = artifacts.Write()
    requests = write_requests(session.upload_id, file)
    sent = 0
    for request in requests:  # a part and a bit, then hold the stream open
        await first.write(request)
        sent += len(request.data)
        if sent > PART:
            break
    committed = (await wait_committed(artifacts, session.upload_id, PART)).committed_size

    # One message: the refusal is decided on it, and a client still sending when the server
    # ends the call may see grpc's INTERNAL instead of the status (grpc/grpc#36066).
    second = asyncio.create_task(
        write(artifacts, session.upload_id, file, committed, committed + MIB, finish=False)
    )
    done, _ = await asyncio.wait({second}, timeout=30)
    assert done, "a second writer of a live session must be refused, not left waiting"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        second.result()
    assert caught.value.code() == grpc.StatusCode.ABORTED

    for request in requests:  # the first writer is unharmed
        await first.write(request)
    await first.done_writing()
    response = await first
    assert response.artifact.sha256 == file.sha256
    await assert_download_matches(artifacts, response.artifact.name, file)


async def test_two_clients_racing_on_one_session_store_the_identical_file(
    artifacts: Artifacts, version: str, tmp_path: Path
) -> None:
    file = LocalFile.random(tmp_path / "f", 3 * PART + 123)
    session = await start_upload(artifacts, version, "f.bin", file)
    logs = [ResumeLog(), ResumeLog()]

    results = await asyncio.gather(
        *(resume_upload(artifacts, session.upload_id, file, log=log) for log in logs)
    )

    assert [r.sha256 for r in results] == [file.sha256, file.sha256], logs
    assert results[0] == results[1]
    assert await list_artifacts(artifacts, version) == [results[0]]
    await assert_download_matches(artifacts, results[0].name, file)


# -- garbage collection ---------------------------------------------------------------------


async def test_gc_aborts_idle_sessions_and_deletes_only_unreferenced_blobs(
    artifacts: Artifacts,
    registry: Stub,
    tmp_path: Path,
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
) -> None:
    first, second = await new_version(registry), await new_version(registry)
    shared = LocalFile.random(tmp_path / "shared", 2 * MIB)
    lonely = LocalFile.random(tmp_path / "lonely", 2 * MIB)
    idle = LocalFile.random(tmp_path / "idle", PART + 2 * MIB)
    kept = await upload(artifacts, first, "shared.bin", shared)
    doomed = await upload(artifacts, second, "shared.bin", shared)
    lone = await upload(artifacts, second, "lonely.bin", lonely)
    stale = await start_upload(artifacts, second, "idle.bin", idle)
    await write(artifacts, stale.upload_id, idle, 0, PART + MIB, finish=False)
    assert (await query(artifacts, stale.upload_id)).committed_size == PART
    await artifacts.DeleteArtifact(apb.DeleteArtifactRequest(name=doomed.name))
    await artifacts.DeleteArtifact(apb.DeleteArtifactRequest(name=lone.name))
    assert len(await bucket_objects(store_endpoints, s3_bucket, BLOB_PREFIX)) == 2
    await asyncio.sleep(1.1)

    run = await run_gc(migrated_database_url, store_endpoints, s3_bucket, "--idle-seconds", "0")

    assert isinstance(run.summary, dict), run.stdout
    assert (await query(artifacts, stale.upload_id)).state == ABORTED, run.summary
    assert await asyncio.to_thread(multipart_uploads, store_endpoints, s3_bucket) == []
    assert len(await bucket_objects(store_endpoints, s3_bucket, BLOB_PREFIX)) == 1, run.summary
    await assert_download_matches(artifacts, kept.name, shared)
    assert await list_artifacts(artifacts, second) == []
    got = await registry.GetModelVersion(pb.GetModelVersionRequest(name=second))
    assert got.status == READY  # the idle upload no longer holds the version open


@pytest.mark.timeout(240)
async def test_gc_running_while_uploads_are_in_flight_deletes_nothing_referenced(
    artifacts: Artifacts,
    registry: Stub,
    tmp_path: Path,
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
) -> None:
    old, new = await new_version(registry), await new_version(registry)
    kept_file = LocalFile.random(tmp_path / "kept", 3 * MIB)
    orphan_file = LocalFile.random(tmp_path / "orphan", 3 * MIB)
    kept = await upload(artifacts, old, "kept.bin", kept_file)
    orphan = await upload(artifacts, old, "orphan.bin", orphan_file)
    await artifacts.DeleteArtifact(apb.DeleteArtifactRequest(name=orphan.name))

    # Sessions with parts stored, then the rest written while gc runs over and over.
    big = [LocalFile.random(tmp_path / f"big{i}", 2 * PART + i * MIB + 7) for i in range(3)]
    sessions = []
    for i, file in enumerate(big):
        session = await start_upload(artifacts, new, f"big{i}.bin", file)
        await write(artifacts, session.upload_id, file, 0, PART + MIB, finish=False)
        sessions.append((session, file))
    # The same bytes again, from a client that does not declare the digest.
    copy = await start_upload(artifacts, new, "kept-copy.bin", kept_file, declare_sha256=False)
    sessions.append((copy, kept_file))
    # And from one that does, while the blob is still an orphan: it may be revived at once.
    revived = await start_upload(artifacts, new, "orphan-again.bin", orphan_file)
    if revived.state != COMMITTED:
        sessions.append((revived, orphan_file))

    gc_args = (migrated_database_url, store_endpoints, s3_bucket, "--idle-seconds", "3600")
    await run_gc(*gc_args)
    uploads_done = asyncio.Event()

    async def gc_until_done() -> int:
        runs = 0
        while not uploads_done.is_set() or runs < 2:
            await run_gc(*gc_args)
            runs += 1
        return runs

    async def finish_all() -> list[object]:
        try:
            return list(
                await asyncio.gather(
                    *(resume_upload(artifacts, s.upload_id, f) for s, f in sessions)
                )
            )
        finally:
            uploads_done.set()

    gc_runs, results = await asyncio.gather(gc_until_done(), finish_all())
    await run_gc(*gc_args)

    assert gc_runs >= 2
    assert len(results) == len(sessions)
    listed = {a.path: a for a in await list_artifacts(artifacts, new)}
    assert sorted(listed) == sorted(
        [f"big{i}.bin" for i in range(3)] + ["kept-copy.bin", "orphan-again.bin"]
    )
    for i, file in enumerate(big):
        await assert_download_matches(artifacts, listed[f"big{i}.bin"].name, file)
    await assert_download_matches(artifacts, listed["kept-copy.bin"].name, kept_file)
    await assert_download_matches(artifacts, listed["orphan-again.bin"].name, orphan_file)
    await assert_download_matches(artifacts, kept.name, kept_file)
    # Five distinct contents are referenced; each is stored exactly once.
    assert len(await bucket_objects(store_endpoints, s3_bucket, BLOB_PREFIX)) == 5
