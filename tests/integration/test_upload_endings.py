"""How a Write stream ends: the message with `finish` is the last one (anything after it is
refused, not dropped), and a session whose saved hash state cannot be read is ended cleanly
rather than resumed to a wrong digest."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import grpc
import pytest
from integration import helpers
from integration.artifact_helpers import (
    ABORTED,
    ACTIVE,
    MIB,
    Artifacts,
    LocalFile,
    list_artifacts,
    new_version,
    query,
    resume_upload,
    start_upload,
    write_requests,
)
from integration.helpers import Stub, assert_clean_message

from modelregistry.hashing import STATE_TAG


@pytest.fixture
def artifacts(channel: grpc.aio.Channel) -> Artifacts:
    return Artifacts(channel)


async def test_a_message_after_finish_is_refused_and_nothing_is_truncated(
    artifacts: Artifacts, registry: Stub, tmp_path: Path
) -> None:
    file = LocalFile.random(tmp_path / "f.bin", 3 * MIB + 5)
    version = await new_version(registry)
    session = await start_upload(artifacts, version, "f.bin", file, declare_size=False)
    requests = list(write_requests(session.upload_id, file, 0, 2 * MIB))
    requests[-1].finish = True  # a client bug: `finish` too early, then the rest of the file
    requests += write_requests(session.upload_id, file, 2 * MIB)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await artifacts.Write(iter(requests))

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, caught.value.details()
    assert "finish" in (caught.value.details() or "")
    assert_clean_message(caught.value.details() or "")
    assert await list_artifacts(artifacts, version) == []
    open_session = await query(artifacts, session.upload_id)
    assert open_session.state == ACTIVE
    # Nothing was lost either: the client resumes where the server stands, to the whole file.
    artifact = await resume_upload(artifacts, session.upload_id, file)
    assert artifact.sha256 == file.sha256
    assert artifact.size_bytes == file.size


async def test_a_session_with_a_hash_state_of_an_unknown_version_is_aborted_cleanly(
    artifacts: Artifacts, registry: Stub, tmp_path: Path, migrated_database_url: str
) -> None:
    file = LocalFile.random(tmp_path / "f.bin", MIB + 1)
    version = await new_version(registry)
    session = await start_upload(artifacts, version, "f.bin", file)
    conn = await asyncpg.connect(migrated_database_url)
    try:  # as a newer release would have saved it
        await conn.execute(
            "UPDATE upload_sessions SET hash_state = $2 WHERE id = $1::uuid",
            session.upload_id,
            STATE_TAG + b"\x07" + bytes(40),
        )
    finally:
        await conn.close()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await artifacts.Write(write_requests(session.upload_id, file))

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, caught.value.details()
    assert "version 7" in (caught.value.details() or "")
    assert (await query(artifacts, session.upload_id)).state == ABORTED
    assert await list_artifacts(artifacts, version) == []
    last = (await helpers.audit_rows(migrated_database_url))[-1]
    assert (last["action"], last["after"]["state"]) == ("Write", "ABORTED")
    with pytest.raises(grpc.aio.AioRpcError):  # never in a state to resume again
        await artifacts.Write(write_requests(session.upload_id, file))
