"""The audit log: one row per successful mutation, written in the mutation's own transaction,
naming who did what to which resource under which request id; nothing for reads or failures;
and rows that cannot be rewritten."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from integration import helpers
from integration.helpers import Stub, create_version, transition

from modelregistry.v1 import model_pb2
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import registry_service_pb2 as pb

PRINCIPAL = "test-admin"  # the admin_token fixture's principal
MODEL = "audited"
PARENT = f"models/{MODEL}"
MUTATING_RPCS = (
    "CreateModel",
    "UpdateModel",
    "DeleteModel",
    "CreateModelVersion",
    "UpdateModelVersion",
    "DeleteModelVersion",
    "TransitionModelVersionStage",
    "SetModelVersionAlias",
    "DeleteModelVersionAlias",
)


def with_request_id(request_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-request-id", request_id),)


def as_datetime(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


@dataclass
class Audited:
    """What a mutation's audit row must say, besides action, principal and request id."""

    resource: str
    before: Callable[[Any], None]
    after: Callable[[Any], None]
    # The time the change stamped on the resource (update_time, create_time or an alias
    # change): PostgreSQL's now() is fixed per transaction, so equality proves the audit row
    # was written in the same transaction as the change.
    changed_at: datetime | None


Scenario = Callable[[Stub, tuple[tuple[str, str], ...]], Awaitable[Audited]]


async def model_with_versions(registry: Stub, count: int) -> model_pb2.Model:
    model: model_pb2.Model = await registry.CreateModel(
        pb.CreateModelRequest(model_id=MODEL, model=model_pb2.Model(owner="ml"))
    )
    for number in range(1, count + 1):
        await create_version(registry, MODEL, description=f"v{number}")
    return model


def is_none(value: Any) -> None:
    assert value is None


def model_summary_of(model: model_pb2.Model) -> Callable[[Any], None]:
    def check(summary: Any) -> None:
        assert summary["etag"] == model.etag
        assert summary["description"] == model.description
        assert summary["owner"] == model.owner
        assert summary["labels"] == dict(model.labels)

    return check


VERSION_SUMMARY_KEYS = {
    "version", "stage", "status", "aliases", "description", "labels", "metrics", "etag",
}  # fmt: skip


def version_summary_of(version: mv.ModelVersion) -> Callable[[Any], None]:
    def check(summary: Any) -> None:
        assert summary["version"] == version.version
        assert summary["stage"] == mv.Stage.Name(version.stage).removeprefix("STAGE_")
        assert summary["status"] == mv.ModelVersionStatus.Name(version.status).removeprefix(
            "MODEL_VERSION_STATUS_"
        )
        assert summary["etag"] == version.etag
        assert summary["description"] == version.description
        assert summary["aliases"] == list(version.aliases)
        assert summary["metrics"] == dict(version.metrics)

    return check


# -- one scenario per mutating RPC: set up without metadata, then the audited call ---------------


async def create_model(registry: Stub, md: Any) -> Audited:
    model = await registry.CreateModel(
        pb.CreateModelRequest(
            model_id=MODEL,
            model=model_pb2.Model(description="d", owner="ml", labels={"team": "nlp"}),
        ),
        metadata=md,
    )
    return Audited(PARENT, is_none, model_summary_of(model), as_datetime(model.create_time))


async def update_model(registry: Stub, md: Any) -> Audited:
    old = await model_with_versions(registry, 0)
    model = await registry.UpdateModel(
        pb.UpdateModelRequest(
            model=model_pb2.Model(name=PARENT, description="new", etag=old.etag),
            update_mask={"paths": ["description"]},
        ),
        metadata=md,
    )
    assert model.etag != old.etag
    return Audited(
        PARENT, model_summary_of(old), model_summary_of(model), as_datetime(model.update_time)
    )


async def delete_model(registry: Stub, md: Any) -> Audited:
    old = await model_with_versions(registry, 2)

    def before(summary: Any) -> None:
        model_summary_of(old)(summary)
        assert summary["versions_deleted"] == 2

    await registry.DeleteModel(pb.DeleteModelRequest(name=PARENT, force=True), metadata=md)
    return Audited(PARENT, before, is_none, None)


async def create_model_version(registry: Stub, md: Any) -> Audited:
    await model_with_versions(registry, 1)
    version = await registry.CreateModelVersion(
        pb.CreateModelVersionRequest(parent=PARENT, model_version=mv.ModelVersion()), metadata=md
    )
    assert version.name == f"{PARENT}/versions/2"

    def after(summary: Any) -> None:
        # The picture every other version mutation records, not a shape of its own.
        assert set(summary) == VERSION_SUMMARY_KEYS
        version_summary_of(version)(summary)

    return Audited(version.name, is_none, after, as_datetime(version.create_time))


async def update_model_version(registry: Stub, md: Any) -> Audited:
    await model_with_versions(registry, 2)
    old = await registry.GetModelVersion(pb.GetModelVersionRequest(name=f"{PARENT}/versions/2"))
    version = await registry.UpdateModelVersion(
        pb.UpdateModelVersionRequest(
            model_version=mv.ModelVersion(
                name=f"{PARENT}/versions/latest", metrics={"accuracy": 0.9}
            ),
            update_mask={"paths": ["metrics"]},
        ),
        metadata=md,
    )
    return Audited(
        version.name,  # by number, though the request said `latest`
        version_summary_of(old),
        version_summary_of(version),
        as_datetime(version.update_time),
    )


async def delete_model_version(registry: Stub, md: Any) -> Audited:
    await model_with_versions(registry, 2)
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=f"{PARENT}/versions/1", alias="old")
    )
    old = await registry.GetModelVersion(pb.GetModelVersionRequest(name=f"{PARENT}/versions/1"))
    await registry.DeleteModelVersion(
        pb.DeleteModelVersionRequest(name=f"{PARENT}/versions/old"), metadata=md
    )
    return Audited(old.name, version_summary_of(old), is_none, None)


async def transition_stage(registry: Stub, md: Any) -> Audited:
    await model_with_versions(registry, 1)
    name = f"{PARENT}/versions/1"
    old = (await transition(registry, name, mv.STAGE_STAGING, reason="ready")).model_version
    response = await registry.TransitionModelVersionStage(
        pb.TransitionModelVersionStageRequest(name=name, stage=mv.STAGE_PRODUCTION),
        metadata=md,
    )
    version = response.model_version
    return Audited(
        name, version_summary_of(old), version_summary_of(version), as_datetime(version.update_time)
    )


async def transition_archiving_existing(registry: Stub, md: Any) -> Audited:
    await model_with_versions(registry, 2)
    await transition(registry, f"{PARENT}/versions/1", mv.STAGE_PRODUCTION)
    old = await registry.GetModelVersion(pb.GetModelVersionRequest(name=f"{PARENT}/versions/2"))
    response = await registry.TransitionModelVersionStage(
        pb.TransitionModelVersionStageRequest(
            name=f"{PARENT}/versions/2", stage=mv.STAGE_PRODUCTION, archive_existing=True
        ),
        metadata=md,
    )
    version = response.model_version
    assert [v.name for v in response.archived_versions] == [f"{PARENT}/versions/1"]
    assert response.archived_versions[0].stage == mv.STAGE_ARCHIVED

    def after(summary: Any) -> None:
        version_summary_of(version)(summary)
        assert summary["archived"] == [f"{PARENT}/versions/1"]

    return Audited(version.name, version_summary_of(old), after, as_datetime(version.update_time))


async def set_alias(registry: Stub, md: Any) -> Audited:
    await model_with_versions(registry, 3)
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=f"{PARENT}/versions/1", alias="champion")
    )
    version = await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=f"{PARENT}/versions/latest", alias="champion"),
        metadata=md,
    )
    assert version.name == f"{PARENT}/versions/3"
    assert list(version.aliases) == ["champion"]
    changes = await registry.ListAliasChanges(pb.ListAliasChangesRequest(parent=PARENT))
    moved_at = as_datetime(changes.alias_changes[-1].time)
    return Audited(
        version.name,
        lambda summary: _assert_equal(summary, {"alias": "champion", "version": 1}),
        lambda summary: _assert_equal(summary, {"alias": "champion", "version": 3}),
        moved_at,
    )


async def delete_alias(registry: Stub, md: Any) -> Audited:
    await model_with_versions(registry, 2)
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=f"{PARENT}/versions/2", alias="champion")
    )
    version = await registry.DeleteModelVersionAlias(
        pb.DeleteModelVersionAliasRequest(model=PARENT, alias="champion"), metadata=md
    )
    assert version.name == f"{PARENT}/versions/2"
    assert list(version.aliases) == []
    changes = await registry.ListAliasChanges(pb.ListAliasChangesRequest(parent=PARENT))
    assert changes.alias_changes[-1].to_version == ""
    return Audited(
        f"{PARENT}/versions/2",  # the version that lost the alias
        lambda summary: _assert_equal(summary, {"alias": "champion", "version": 2}),
        is_none,
        as_datetime(changes.alias_changes[-1].time),
    )


def _assert_equal(actual: Any, expected: Any) -> None:
    assert actual == expected


SCENARIOS: list[tuple[str, str, Scenario]] = [
    ("CreateModel", "CreateModel", create_model),
    ("UpdateModel", "UpdateModel", update_model),
    ("DeleteModel", "DeleteModel", delete_model),
    ("CreateModelVersion", "CreateModelVersion", create_model_version),
    ("UpdateModelVersion", "UpdateModelVersion", update_model_version),
    ("DeleteModelVersion", "DeleteModelVersion", delete_model_version),
    ("TransitionModelVersionStage", "TransitionModelVersionStage", transition_stage),
    (
        "TransitionModelVersionStage/archive_existing",
        "TransitionModelVersionStage",
        transition_archiving_existing,
    ),
    ("SetModelVersionAlias", "SetModelVersionAlias", set_alias),
    ("DeleteModelVersionAlias", "DeleteModelVersionAlias", delete_alias),
]


def test_every_mutating_rpc_has_a_scenario() -> None:
    assert {action for _, action, _ in SCENARIOS} == set(MUTATING_RPCS)


@pytest.mark.parametrize(
    ("action", "scenario"),
    [(action, scenario) for _, action, scenario in SCENARIOS],
    ids=[label for label, _, _ in SCENARIOS],
)
async def test_a_mutation_writes_one_audit_row(
    action: str, scenario: Scenario, registry: Stub, migrated_database_url: str
) -> None:
    request_id = f"req-{uuid.uuid4()}"

    audited = await scenario(registry, with_request_id(request_id))

    # Setup calls ran without the header, so each has an id the server made up.
    rows = await helpers.audit_rows(migrated_database_url)
    ours = [r for r in rows if r["request_id"] == request_id]
    assert len(ours) == 1, ours
    row = ours[0]
    assert row is rows[-1], "the audited call should be the last mutation"
    assert row["action"] == action
    assert row["resource"] == audited.resource
    assert row["principal"] == PRINCIPAL
    assert row["request_id"] == request_id
    audited.before(row["before"])
    audited.after(row["after"])
    if audited.changed_at is not None:
        assert row["time"] == audited.changed_at


async def test_without_a_request_id_header_the_server_records_one_it_made(
    registry: Stub, migrated_database_url: str
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id=MODEL))
    (row,) = await helpers.audit_rows(migrated_database_url)
    assert row["request_id"]
    assert row["principal"] == PRINCIPAL


FAILING_MUTATIONS: list[tuple[str, Callable[[Stub, Any], Awaitable[Any]]]] = [
    (
        "CreateModel/exists",
        lambda r, md: r.CreateModel(pb.CreateModelRequest(model_id=MODEL), metadata=md),
    ),
    (
        "UpdateModel/stale-etag",
        lambda r, md: r.UpdateModel(
            pb.UpdateModelRequest(
                model=model_pb2.Model(name=PARENT, description="x", etag="1-0"),
                update_mask={"paths": ["description"]},
            ),
            metadata=md,
        ),
    ),
    (
        "DeleteModel/has-versions",
        lambda r, md: r.DeleteModel(pb.DeleteModelRequest(name=PARENT), metadata=md),
    ),
    (
        "CreateModelVersion/missing-parent-version",
        lambda r, md: r.CreateModelVersion(
            pb.CreateModelVersionRequest(
                parent=PARENT,
                model_version=mv.ModelVersion(
                    lineage=mv.Lineage(derived_from=f"{PARENT}/versions/9")
                ),
            ),
            metadata=md,
        ),
    ),
    (
        "UpdateModelVersion/output-only",
        lambda r, md: r.UpdateModelVersion(
            pb.UpdateModelVersionRequest(
                model_version=mv.ModelVersion(name=f"{PARENT}/versions/1"),
                update_mask={"paths": ["stage"]},
            ),
            metadata=md,
        ),
    ),
    (
        "DeleteModelVersion/in-production",
        lambda r, md: r.DeleteModelVersion(
            pb.DeleteModelVersionRequest(name=f"{PARENT}/versions/1"), metadata=md
        ),
    ),
    (
        "TransitionModelVersionStage/production-occupied",
        lambda r, md: r.TransitionModelVersionStage(
            pb.TransitionModelVersionStageRequest(
                name=f"{PARENT}/versions/2", stage=mv.STAGE_PRODUCTION
            ),
            metadata=md,
        ),
    ),
    (
        "SetModelVersionAlias/missing-version",
        lambda r, md: r.SetModelVersionAlias(
            pb.SetModelVersionAliasRequest(name=f"{PARENT}/versions/9", alias="x"), metadata=md
        ),
    ),
    (
        "DeleteModelVersionAlias/missing",
        lambda r, md: r.DeleteModelVersionAlias(
            pb.DeleteModelVersionAliasRequest(model=PARENT, alias="nobody"), metadata=md
        ),
    ),
]


async def test_a_failed_mutation_writes_no_audit_row(
    registry: Stub, migrated_database_url: str
) -> None:
    await model_with_versions(registry, 2)
    await transition(registry, f"{PARENT}/versions/1", mv.STAGE_PRODUCTION)
    earlier = await helpers.audit_rows(migrated_database_url)
    for label, call in FAILING_MUTATIONS:
        with pytest.raises(grpc.aio.AioRpcError):
            await call(registry, with_request_id(f"failing-{label}"))
    assert await helpers.audit_rows(migrated_database_url) == earlier


async def test_reads_write_no_audit_row(registry: Stub, migrated_database_url: str) -> None:
    await model_with_versions(registry, 2)
    await transition(registry, f"{PARENT}/versions/1", mv.STAGE_STAGING)
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=f"{PARENT}/versions/2", alias="champion")
    )
    earlier = await helpers.audit_rows(migrated_database_url)
    md = with_request_id("reads")

    await registry.GetModel(pb.GetModelRequest(name=PARENT), metadata=md)
    await registry.ListModels(pb.ListModelsRequest(), metadata=md)
    await registry.GetModelVersion(
        pb.GetModelVersionRequest(name=f"{PARENT}/versions/champion"), metadata=md
    )
    await registry.ListModelVersions(pb.ListModelVersionsRequest(parent="models/-"), metadata=md)
    await registry.ListStageTransitions(
        pb.ListStageTransitionsRequest(parent=f"{PARENT}/versions/-"), metadata=md
    )
    await registry.ListAliasChanges(pb.ListAliasChangesRequest(parent=PARENT), metadata=md)
    await registry.ListModelHistory(pb.ListModelHistoryRequest(parent=PARENT), metadata=md)
    await registry.CompareModelVersions(
        pb.CompareModelVersionsRequest(names=[f"{PARENT}/versions/1", f"{PARENT}/versions/2"]),
        metadata=md,
    )

    assert await helpers.audit_rows(migrated_database_url) == earlier
    read_rpcs = set(pb.DESCRIPTOR.services_by_name["RegistryService"].methods_by_name)
    assert len(read_rpcs - set(MUTATING_RPCS)) == 8  # every read above, none forgotten


async def test_a_retried_create_records_one_event(
    registry: Stub, migrated_database_url: str
) -> None:
    await registry.CreateModel(
        pb.CreateModelRequest(model_id=MODEL, request_id="create-model-once"),
        metadata=with_request_id("first"),
    )
    first = await registry.CreateModelVersion(
        pb.CreateModelVersionRequest(
            parent=PARENT, model_version=mv.ModelVersion(description="a"), request_id="once"
        ),
        metadata=with_request_id("first-version"),
    )
    again = await registry.CreateModelVersion(
        pb.CreateModelVersionRequest(
            parent=PARENT, model_version=mv.ModelVersion(description="a"), request_id="once"
        ),
        metadata=with_request_id("retry-version"),
    )
    model_again = await registry.CreateModel(
        pb.CreateModelRequest(model_id=MODEL, request_id="create-model-once"),
        metadata=with_request_id("retry"),
    )

    assert again.name == first.name == f"{PARENT}/versions/1"
    assert again.etag == first.etag
    assert model_again.name == PARENT
    rows = await helpers.audit_rows(migrated_database_url)
    assert [(r["action"], r["request_id"]) for r in rows] == [
        ("CreateModel", "first"),
        ("CreateModelVersion", "first-version"),
    ]
    latest = await registry.GetModel(pb.GetModelRequest(name=PARENT))
    assert latest.latest_version == 1  # the retry allocated no number either


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET principal = 'someone-else'",
        "UPDATE audit_events SET after = NULL WHERE action = 'CreateModel'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE sequence = (SELECT min(sequence) FROM audit_events)",
    ],
    ids=["update-principal", "update-after", "delete-all", "delete-one"],
)
async def test_audit_rows_cannot_be_rewritten(
    statement: str, registry: Stub, migrated_database_url: str
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id=MODEL))
    earlier = await helpers.audit_rows(migrated_database_url)
    conn = await asyncpg.connect(migrated_database_url)
    try:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute(statement)
    finally:
        await conn.close()
    assert await helpers.audit_rows(migrated_database_url) == earlier


async def test_audit_rows_cannot_be_truncated(registry: Stub, migrated_database_url: str) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id=MODEL))
    conn = await asyncpg.connect(migrated_database_url)
    try:
        async with conn.transaction():
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("TRUNCATE audit_events")
    finally:
        await conn.close()


async def test_deleting_a_version_records_that_its_aliases_went(registry: Stub) -> None:
    # AliasChange documents "set, moved to another version, or deleted", and DeleteModelVersion
    # "deletes a version and its aliases": the history must not end with the alias still
    # pointing at a version that no longer exists.
    await model_with_versions(registry, 2)
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=f"{PARENT}/versions/1", alias="old")
    )
    await registry.DeleteModelVersion(pb.DeleteModelVersionRequest(name=f"{PARENT}/versions/1"))

    changes = await registry.ListAliasChanges(pb.ListAliasChangesRequest(parent=PARENT))
    assert [(c.alias, c.from_version, c.to_version) for c in changes.alias_changes] == [
        ("old", "", f"{PARENT}/versions/1"),
        ("old", f"{PARENT}/versions/1", ""),
    ]
