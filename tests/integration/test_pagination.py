"""Keyset pages: stable under concurrent inserts, bound to the request that made them."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from support.stubs import RegistryServiceAsyncStub

from modelregistry.v1 import registry_service_pb2 as pb


async def _insert_versions(dsn: str, model_id: str, count: int) -> None:
    """Bulk-insert through SQL: the point here is paging, not a thousand create calls."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """WITH m AS (UPDATE models SET latest_version = latest_version + $2
                          WHERE name = $1 RETURNING id, latest_version)
               INSERT INTO model_versions (model_id, version, metrics)
               SELECT m.id, m.latest_version - $2 + g,
                      jsonb_build_object('accuracy', (g % 97) / 97.0)
               FROM m, generate_series(1, $2) g""",
            model_id,
            count,
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("order_by", "filter_text"),
    [("", ""), ("metrics.accuracy desc", ""), ("create_time", "metrics.accuracy >= 0.25")],
)
async def test_paging_under_concurrent_inserts_returns_each_existing_version_once(
    registry: RegistryServiceAsyncStub, migrated_database_url: str, order_by: str, filter_text: str
) -> None:
    model = await registry.CreateModel(pb.CreateModelRequest(model_id="llama"))
    await _insert_versions(migrated_database_url, "llama", 1000)
    everything = await registry.ListModelVersions(
        pb.ListModelVersionsRequest(parent=model.name, page_size=1000, filter=filter_text)
    )
    existing = {v.name for v in everything.model_versions}

    seen: list[str] = []
    token = ""
    inserter = asyncio.create_task(_keep_inserting(registry, model.name))
    try:
        while True:
            page = await registry.ListModelVersions(
                pb.ListModelVersionsRequest(
                    parent=model.name,
                    page_size=7,
                    page_token=token,
                    filter=filter_text,
                    order_by=order_by,
                )
            )
            assert len(page.model_versions) <= 7
            seen += [v.name for v in page.model_versions]
            token = page.next_page_token
            if not token:
                break
    finally:
        inserter.cancel()
    seen_existing = [name for name in seen if name in existing]
    assert len(seen_existing) == len(existing)
    assert set(seen_existing) == existing
    assert len(seen) == len(set(seen))


async def _keep_inserting(registry: RegistryServiceAsyncStub, parent: str) -> None:
    while True:
        await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent=parent))
        await asyncio.sleep(0.001)


async def test_page_token_used_with_another_filter_is_refused(
    registry: RegistryServiceAsyncStub,
) -> None:
    model = await registry.CreateModel(pb.CreateModelRequest(model_id="llama"))
    for _ in range(3):
        await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent=model.name))
    first = await registry.ListModelVersions(
        pb.ListModelVersionsRequest(parent=model.name, page_size=1, filter="version > 0")
    )
    assert first.next_page_token

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.ListModelVersions(
            pb.ListModelVersionsRequest(
                parent=model.name,
                page_size=1,
                filter="version > 1",
                page_token=first.next_page_token,
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (caught.value.details() or "")


async def test_oversized_page_size_is_coerced_to_the_maximum(
    registry: RegistryServiceAsyncStub, migrated_database_url: str
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id="llama"))
    await _insert_versions(migrated_database_url, "llama", 1005)

    page = await registry.ListModelVersions(
        pb.ListModelVersionsRequest(parent="models/llama", page_size=5000)
    )

    assert len(page.model_versions) == 1000
    assert page.next_page_token


async def test_listing_across_models_with_a_stage_filter(
    registry: RegistryServiceAsyncStub,
) -> None:
    from modelregistry.v1 import model_version_pb2

    for model_id in ("a", "b", "c"):
        model = await registry.CreateModel(pb.CreateModelRequest(model_id=model_id))
        version = await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent=model.name))
        await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent=model.name))
        if model_id != "b":
            await registry.TransitionModelVersionStage(
                pb.TransitionModelVersionStageRequest(
                    name=version.name, stage=model_version_pb2.STAGE_PRODUCTION
                )
            )

    page = await registry.ListModelVersions(
        pb.ListModelVersionsRequest(parent="models/-", filter="stage = PRODUCTION")
    )

    assert sorted(v.name for v in page.model_versions) == [
        "models/a/versions/1",
        "models/c/versions/1",
    ]
