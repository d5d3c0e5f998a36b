"""Uploads and downloads with the server reaching its S3 store over https (issue 14): parts
go up signed without a payload hash, yet the stored artifact is byte-identical and carries
the SHA-256 that sha256sum prints, also after a resume."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from integration.artifact_helpers import (
    ACTIVE,
    MIB,
    PART,
    Artifacts,
    LocalFile,
    assert_download_matches,
    new_version,
    query,
    resume_upload,
    start_upload,
    wait_committed,
    write,
    write_then_break,
)
from integration.helpers import Stub
from support.server import authenticated_channel, running_server
from support.store_tls import HttpsStore, https_store
from support.stores import StoreEndpoints

SIZE = 2 * PART + 5 * MIB + 123  # three parts, the last one short


@pytest.fixture(scope="module")
def tls_store(
    tmp_path_factory: pytest.TempPathFactory, store_endpoints: StoreEndpoints
) -> Iterator[HttpsStore]:
    with https_store(
        tmp_path_factory.mktemp("https-store"), store_endpoints.admin_database_url
    ) as store:
        yield store


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> LocalFile:
    return LocalFile.random(tmp_path_factory.mktemp("tls-weights") / "weights.bin", SIZE)


@pytest.fixture
async def tls_channel(
    migrated_database_url: str, tls_store: HttpsStore, admin_token: str
) -> AsyncIterator[grpc.aio.Channel]:
    bucket = tls_store.new_bucket()
    async with (
        running_server(
            migrated_database_url, tls_store.endpoints, bucket, s3_ca_file=tls_store.ca_file
        ) as target,
        authenticated_channel(target, admin_token) as channel,
    ):
        yield channel


def _sha256sum(file: LocalFile) -> str:
    digest = hashlib.sha256()
    with file.path.open("rb") as source:
        while block := source.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.timeout(180)
async def test_an_upload_over_https_to_the_store_round_trips_with_its_sha256(
    tls_channel: grpc.aio.Channel, weights: LocalFile
) -> None:
    artifacts = Artifacts(tls_channel)
    version = await new_version(Stub(tls_channel))
    session = await start_upload(artifacts, version, "model.bin", weights, declare_sha256=False)

    response = await write(artifacts, session.upload_id, weights)

    assert response.artifact.sha256 == _sha256sum(weights)
    assert response.artifact.size_bytes == SIZE
    await assert_download_matches(artifacts, response.artifact.name, weights)


@pytest.mark.timeout(180)
async def test_an_upload_broken_and_resumed_over_https_to_the_store_keeps_its_sha256(
    tls_channel: grpc.aio.Channel, weights: LocalFile
) -> None:
    artifacts = Artifacts(tls_channel)
    version = await new_version(Stub(tls_channel))
    # No declared size or digest: standard 16 MiB parts, and the digest is the server's own.
    session = await start_upload(
        artifacts, version, "model.bin", weights, declare_size=False, declare_sha256=False
    )

    async def first_part_stored() -> None:
        await wait_committed(artifacts, session.upload_id, PART)

    await write_then_break(
        artifacts, session.upload_id, weights, 0, PART + 3 * MIB, before_break=first_part_stored
    )
    after_break = await query(artifacts, session.upload_id)
    assert after_break.state == ACTIVE
    assert after_break.committed_size == PART

    artifact = await resume_upload(artifacts, session.upload_id, weights)

    assert artifact.sha256 == _sha256sum(weights)
    assert artifact.size_bytes == SIZE
    await assert_download_matches(artifacts, artifact.name, weights)
