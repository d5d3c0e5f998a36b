"""Invariants that must hold when many callers act at once."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2
from support.stubs import RegistryServiceAsyncStub

from modelregistry.v1 import model_pb2, model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb


async def _model(registry: RegistryServiceAsyncStub, model_id: str = "bert") -> model_pb2.Model:
    return await registry.CreateModel(pb.CreateModelRequest(model_id=model_id))


async def _version(
    registry: RegistryServiceAsyncStub, parent: str
) -> model_version_pb2.ModelVersion:
    return await registry.CreateModelVersion(
        pb.CreateModelVersionRequest(parent=parent, model_version=model_version_pb2.ModelVersion())
    )


async def test_concurrent_creates_allocate_gapless_unique_numbers(
    registry: RegistryServiceAsyncStub, migrated_database_url: str
) -> None:
    model = await _model(registry)

    created = await asyncio.gather(*(_version(registry, model.name) for _ in range(100)))

    assert sorted(v.version for v in created) == list(range(1, 101))
    assert len({v.name for v in created}) == 100
    conn = await asyncpg.connect(migrated_database_url)
    try:
        stored = await conn.fetch("SELECT version FROM model_versions ORDER BY version")
        events = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE action = 'CreateModelVersion'"
        )
    finally:
        await conn.close()
    assert [r["version"] for r in stored] == list(range(1, 101))
    assert events == 100


@pytest.mark.parametrize("archive_existing", [True, False])
async def test_concurrent_promotions_leave_exactly_one_in_production(
    registry: RegistryServiceAsyncStub, archive_existing: bool
) -> None:
    model = await _model(registry)
    versions = [await _version(registry, model.name) for _ in range(20)]

    async def promote(version: model_version_pb2.ModelVersion) -> grpc.StatusCode:
        try:
            await registry.TransitionModelVersionStage(
                pb.TransitionModelVersionStageRequest(
                    name=version.name,
                    stage=model_version_pb2.STAGE_PRODUCTION,
                    archive_existing=archive_existing,
                )
            )
        except grpc.aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    outcomes = await asyncio.gather(*(promote(v) for v in versions))

    listed = await registry.ListModelVersions(pb.ListModelVersionsRequest(parent=model.name))
    stages = [v.stage for v in listed.model_versions]
    assert stages.count(model_version_pb2.STAGE_PRODUCTION) == 1
    if archive_existing:
        assert outcomes.count(grpc.StatusCode.OK) == 20
        assert stages.count(model_version_pb2.STAGE_ARCHIVED) == 19
    else:
        assert outcomes.count(grpc.StatusCode.OK) == 1
        assert set(outcomes) == {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}
        assert stages.count(model_version_pb2.STAGE_DEVELOPMENT) == 19


async def test_concurrent_updates_with_the_same_etag_one_wins(
    registry: RegistryServiceAsyncStub,
) -> None:
    model = await _model(registry)
    version = await _version(registry, model.name)

    async def update(description: str) -> grpc.StatusCode:
        request = pb.UpdateModelVersionRequest(
            model_version=model_version_pb2.ModelVersion(
                name=version.name, description=description, etag=version.etag
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
        try:
            await registry.UpdateModelVersion(request)
        except grpc.aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    outcomes = await asyncio.gather(*(update(f"writer {i}") for i in range(10)))

    assert outcomes.count(grpc.StatusCode.OK) == 1
    assert outcomes.count(grpc.StatusCode.ABORTED) == 9
    winner = outcomes.index(grpc.StatusCode.OK)
    stored = await registry.GetModelVersion(pb.GetModelVersionRequest(name=version.name))
    assert stored.description == f"writer {winner}"
    assert stored.etag != version.etag


async def test_retried_create_with_request_id_returns_the_same_version(
    registry: RegistryServiceAsyncStub,
) -> None:
    model = await _model(registry)
    request = pb.CreateModelVersionRequest(
        parent=model.name,
        request_id="7d3c1f0e-ci-run-42",
        model_version=model_version_pb2.ModelVersion(description="from CI"),
    )

    first = await registry.CreateModelVersion(request)
    retries = await asyncio.gather(*(registry.CreateModelVersion(request) for _ in range(5)))
    other = await _version(registry, model.name)

    assert {r.name for r in retries} == {first.name}
    assert other.version == first.version + 1


async def test_concurrent_creates_with_one_request_id_make_one_version(
    registry: RegistryServiceAsyncStub,
) -> None:
    model = await _model(registry)
    request = pb.CreateModelVersionRequest(parent=model.name, request_id="same-retry")

    results = await asyncio.gather(*(registry.CreateModelVersion(request) for _ in range(10)))

    assert {r.name for r in results} == {f"{model.name}/versions/1"}
    listed = await registry.ListModelVersions(pb.ListModelVersionsRequest(parent=model.name))
    assert len(listed.model_versions) == 1


async def test_retried_create_model_with_request_id_returns_the_same_model(
    registry: RegistryServiceAsyncStub,
) -> None:
    request = pb.CreateModelRequest(model_id="gpt", request_id="create-gpt-1")

    first = await registry.CreateModel(request)
    again = await registry.CreateModel(request)

    assert again.name == first.name
    assert again.etag == first.etag


async def test_alias_moves_atomically_under_concurrency(registry: RegistryServiceAsyncStub) -> None:
    model = await _model(registry)
    versions = [await _version(registry, model.name) for _ in range(10)]

    await asyncio.gather(
        *(
            registry.SetModelVersionAlias(
                pb.SetModelVersionAliasRequest(name=v.name, alias="champion")
            )
            for v in versions
        )
    )

    listed = await registry.ListModelVersions(pb.ListModelVersionsRequest(parent=model.name))
    holders = [v.name for v in listed.model_versions if "champion" in v.aliases]
    assert len(holders) == 1
    history = await registry.ListAliasChanges(pb.ListAliasChangesRequest(parent=model.name))
    assert len(history.alias_changes) == 10
    assert history.alias_changes[0].from_version == ""
    for before, after in zip(history.alias_changes, history.alias_changes[1:], strict=False):
        assert after.from_version == before.to_version
    assert history.alias_changes[-1].to_version == holders[0]
