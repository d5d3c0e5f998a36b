"""Promotion policies, approvals and protected aliases, through the generated clients against a
real server: a refused promotion lists every unmet condition and changes nothing; approvals
count once per approver, even when sent concurrently; only approvers approve and move
protected aliases; only admins change a policy."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from integration import helpers
from integration.helpers import Stub, create_version, transition
from support.auth import make_token
from support.server import authenticated_channel
from support.stubs import (
    CollaborationServiceAsyncStub,
    PolicyServiceAsyncStub,
    RegistryServiceAsyncStub,
)

from modelregistry.domain.access import Role
from modelregistry.v1 import collaboration_pb2 as co
from modelregistry.v1 import collaboration_service_pb2 as cpb
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import policy_pb2 as pp
from modelregistry.v1 import policy_service_pb2 as pb
from modelregistry.v1 import registry_service_pb2 as rpb

MODEL = "gated"
OTHER_MODEL = "other"
POLICY = f"models/{MODEL}/promotionPolicy"
V1 = f"models/{MODEL}/versions/1"
V2 = f"models/{MODEL}/versions/2"
TABLES = (*helpers.TABLES, "flags", "approvals", "promotion_policies")
GE = pp.COMPARATOR_GREATER_OR_EQUAL
LT = pp.COMPARATOR_LESS


@pytest.fixture
def policy(channel: grpc.aio.Channel) -> PolicyServiceAsyncStub:
    return PolicyServiceAsyncStub(channel)


@pytest.fixture
def collab(channel: grpc.aio.Channel) -> CollaborationServiceAsyncStub:
    return CollaborationServiceAsyncStub(channel)


class Caller:
    """Stubs of the three services for one principal's token."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.registry = RegistryServiceAsyncStub(channel)
        self.policy = PolicyServiceAsyncStub(channel)
        self.collab = CollaborationServiceAsyncStub(channel)


@asynccontextmanager
async def caller(
    target: str, dsn: str, principal: str, role: Role, model: str | None = None
) -> AsyncIterator[Caller]:
    token = await make_token(dsn, principal=principal, role=role, model=model)
    async with authenticated_channel(target, token) as channel:
        yield Caller(channel)


async def seed(registry: Stub) -> None:
    """Models `gated` (versions 1 and 2, both in STAGING) and `other`."""
    await registry.CreateModel(rpb.CreateModelRequest(model_id=MODEL))
    await registry.CreateModel(rpb.CreateModelRequest(model_id=OTHER_MODEL))
    for _ in range(2):
        await create_version(registry, MODEL, metrics={"accuracy": 0.85})
    await transition(registry, V1, mv.STAGE_STAGING)
    await transition(registry, V2, mv.STAGE_STAGING)


def rules(**fields: Any) -> pp.PromotionPolicy:
    return pp.PromotionPolicy(name=POLICY, **fields)


async def set_policy(policy: PolicyServiceAsyncStub, **fields: Any) -> pp.PromotionPolicy:
    updated: pp.PromotionPolicy = await policy.UpdatePromotionPolicy(
        pb.UpdatePromotionPolicyRequest(promotion_policy=rules(**fields))
    )
    return updated


def metric(
    name: str, comparator: pp.Comparator.ValueType, threshold: float
) -> pp.MetricRequirement:
    return pp.MetricRequirement(metric=name, comparator=comparator, threshold=threshold)


async def approve(stub: PolicyServiceAsyncStub, parent: str = V1, comment: str = "") -> pp.Approval:
    approval: pp.Approval = await stub.CreateApproval(
        pb.CreateApprovalRequest(parent=parent, approval=pp.Approval(comment=comment))
    )
    return approval


async def snapshot(dsn: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        tables: dict[str, list[str]] = {}
        for table in TABLES:
            rows = await conn.fetch(
                f"SELECT to_jsonb(t)::text AS row FROM {table} t ORDER BY 1"  # noqa: S608
            )
            tables[table] = [r["row"] for r in rows]
        return tables
    finally:
        await conn.close()


def violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str, str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    found: list[tuple[str, str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            found.extend((v.type, v.subject, v.description) for v in failure.violations)
    return found


def reason(err: grpc.aio.AioRpcError) -> str:
    infos = helpers.error_details(err).error_infos
    return infos[0].reason if infos else ""


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    helpers.assert_clean_message(caught.value.details() or "")
    return caught.value


async def stage_of(registry: Stub, name: str) -> int:
    version = await registry.GetModelVersion(rpb.GetModelVersionRequest(name=name))
    stage: int = version.stage
    return stage


# -- promotion ------------------------------------------------------------------------------


async def test_a_refused_promotion_lists_every_unmet_condition_until_each_is_met(
    registry: Stub,
    policy: PolicyServiceAsyncStub,
    collab: CollaborationServiceAsyncStub,
    registry_target: str,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    await set_policy(
        policy,
        required_metrics=[metric("accuracy", GE, 0.9), metric("loss", LT, 0.2)],
        required_approvals=2,
    )
    raised = await collab.CreateFlag(
        cpb.CreateFlagRequest(
            parent=V1, flag=co.Flag(severity=co.FLAG_SEVERITY_HIGH, reason="drifts on EU data")
        )
    )
    async with (
        caller(registry_target, migrated_database_url, "alice", Role.APPROVER) as alice,
        caller(registry_target, migrated_database_url, "bob", Role.APPROVER) as bob,
    ):
        await approve(alice.policy, comment="eval looks fine")
        before = await snapshot(migrated_database_url)

        err = await refused(transition(alice.registry, V1, mv.STAGE_PRODUCTION))

        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert violations(err) == [
            ("METRIC", "accuracy", "accuracy is 0.85, needs >= 0.9"),
            ("METRIC", "loss", "loss is missing, needs < 0.2"),
            ("APPROVALS", V1, "has 1 of 2 approvals"),
            ("FLAG", raised.name, "HIGH: drifts on EU data"),
        ]
        assert reason(err) == "PROMOTION_POLICY_NOT_MET"
        assert "accuracy is 0.85, needs >= 0.9" in (err.details() or "")
        assert await snapshot(migrated_database_url) == before
        assert await stage_of(registry, V1) == mv.STAGE_STAGING

        # The metrics: fixed by an update, so only the approvals and the flag remain.
        await registry.UpdateModelVersion(
            rpb.UpdateModelVersionRequest(
                model_version=mv.ModelVersion(name=V1, metrics={"accuracy": 0.93, "loss": 0.1}),
                update_mask=field_mask_pb2.FieldMask(paths=["metrics"]),
            )
        )
        err = await refused(transition(alice.registry, V1, mv.STAGE_PRODUCTION))
        assert [v[0] for v in violations(err)] == ["APPROVALS", "FLAG"]

        # A second approver; approving twice does not make alice count twice.
        await approve(alice.policy)
        await approve(bob.policy)
        err = await refused(transition(alice.registry, V1, mv.STAGE_PRODUCTION))
        assert [v[0] for v in violations(err)] == ["FLAG"]
        assert reason(err) == "OPEN_FLAGS"

        await collab.ResolveFlag(cpb.ResolveFlagRequest(name=raised.name, resolution="retrained"))
        moved = await transition(alice.registry, V1, mv.STAGE_PRODUCTION)

    assert moved.model_version.stage == mv.STAGE_PRODUCTION
    rows = await helpers.audit_rows(migrated_database_url)
    assert rows[-1]["action"] == "TransitionModelVersionStage"
    assert rows[-1]["principal"] == "alice"


async def test_an_approval_counts_only_for_its_version(
    registry: Stub, policy: PolicyServiceAsyncStub
) -> None:
    await seed(registry)
    await set_policy(policy, required_approvals=1)
    await approve(policy, V2)

    err = await refused(transition(registry, V1, mv.STAGE_PRODUCTION))
    assert violations(err) == [("APPROVALS", V1, "has 0 of 1 approvals")]
    await transition(registry, V2, mv.STAGE_PRODUCTION)


async def test_allow_open_flags_lets_a_flagged_version_through(
    registry: Stub, policy: PolicyServiceAsyncStub, collab: CollaborationServiceAsyncStub
) -> None:
    await seed(registry)
    await collab.CreateFlag(
        cpb.CreateFlagRequest(parent=V1, flag=co.Flag(severity=co.FLAG_SEVERITY_LOW, reason="x"))
    )
    err = await refused(transition(registry, V1, mv.STAGE_PRODUCTION))
    assert [v[0] for v in violations(err)] == ["FLAG"]

    await set_policy(policy, allow_open_flags=True)
    moved = await transition(registry, V1, mv.STAGE_PRODUCTION)
    assert moved.model_version.stage == mv.STAGE_PRODUCTION


# -- approvals ------------------------------------------------------------------------------


async def test_concurrent_approvals_by_one_approver_record_one(
    registry: Stub,
    policy: PolicyServiceAsyncStub,
    registry_target: str,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    await set_policy(policy, required_approvals=2)
    async with caller(registry_target, migrated_database_url, "alice", Role.APPROVER) as alice:
        approvals = await asyncio.gather(
            *(approve(alice.policy, f"models/{MODEL}/versions/1") for _ in range(10))
        )

    assert {a.name for a in approvals} == {approvals[0].name}
    assert approvals[0].name.startswith(f"{V1}/approvals/")
    assert {a.approver for a in approvals} == {"alice"}
    listed = await policy.ListApprovals(pb.ListApprovalsRequest(parent=V1))
    assert [a.name for a in listed.approvals] == [approvals[0].name]
    rows = await helpers.audit_rows(migrated_database_url)
    assert [r["resource"] for r in rows if r["action"] == "CreateApproval"] == [approvals[0].name]
    err = await refused(transition(registry, V1, mv.STAGE_PRODUCTION))
    assert violations(err) == [("APPROVALS", V1, "has 1 of 2 approvals")]


async def test_an_approval_is_named_by_number_audited_once_and_listed_oldest_first(
    registry: Stub,
    policy: PolicyServiceAsyncStub,
    registry_target: str,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    await registry.SetModelVersionAlias(rpb.SetModelVersionAliasRequest(name=V1, alias="cand"))
    request_id = f"req-{uuid.uuid4()}"
    first = await policy.CreateApproval(
        pb.CreateApprovalRequest(
            parent=f"models/{MODEL}/versions/cand", approval=pp.Approval(comment="ship it")
        ),
        metadata=(("x-request-id", request_id),),
    )
    assert first.name.startswith(f"{V1}/approvals/")
    assert first.approver == "test-admin"
    assert first.comment == "ship it"
    assert first.create_time.seconds > 0
    again = await approve(policy, V1, comment="a different comment")
    assert again == first  # the recorded approval, unchanged

    rows = await helpers.audit_rows(migrated_database_url)
    ours = [r for r in rows if r["action"] == "CreateApproval"]
    assert len(ours) == 1
    assert ours[0]["request_id"] == request_id
    assert ours[0]["resource"] == first.name
    assert ours[0]["before"] is None
    assert ours[0]["after"] == {"approver": "test-admin", "comment": "ship it"}

    names = [first.name]
    for principal in ("p1", "p2", "p3"):
        async with caller(registry_target, migrated_database_url, principal, Role.APPROVER) as c:
            names.append((await approve(c.policy, V1)).name)
    page = await policy.ListApprovals(pb.ListApprovalsRequest(parent=V1, page_size=3))
    rest = await policy.ListApprovals(
        pb.ListApprovalsRequest(parent=V1, page_size=3, page_token=page.next_page_token)
    )
    assert [a.name for a in [*page.approvals, *rest.approvals]] == names
    assert [a.approver for a in page.approvals] == ["test-admin", "p1", "p2"]
    assert rest.next_page_token == ""
    wrong = await refused(
        policy.ListApprovals(pb.ListApprovalsRequest(parent=V2, page_token=page.next_page_token))
    )
    assert wrong.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("role", "model"),
    [(Role.EDITOR, None), (Role.VIEWER, None), (Role.APPROVER, OTHER_MODEL)],
    ids=["editor", "viewer", "approver-on-another-model"],
)
async def test_only_approvers_on_the_model_approve(
    role: Role,
    model: str | None,
    registry: Stub,
    policy: PolicyServiceAsyncStub,
    registry_target: str,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    before = await snapshot(migrated_database_url)
    async with caller(registry_target, migrated_database_url, "carol", role, model) as carol:
        err = await refused(approve(carol.policy))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "approver" in (err.details() or "")
    assert await snapshot(migrated_database_url) == before

    async with caller(registry_target, migrated_database_url, "dave", Role.APPROVER, MODEL) as dave:
        granted = await approve(dave.policy)
    assert granted.approver == "dave"


async def test_approval_errors(registry: Stub, policy: PolicyServiceAsyncStub) -> None:
    await seed(registry)
    cases: list[tuple[Any, grpc.StatusCode]] = [
        (approve(policy, f"models/{MODEL}/versions/9"), grpc.StatusCode.NOT_FOUND),
        (approve(policy, "models/nope/versions/1"), grpc.StatusCode.NOT_FOUND),
        (approve(policy, f"models/{MODEL}/versions/nosuch"), grpc.StatusCode.NOT_FOUND),
        (approve(policy, "models/gated"), grpc.StatusCode.INVALID_ARGUMENT),
        (approve(policy, V1, comment="x" * 4097), grpc.StatusCode.INVALID_ARGUMENT),
        (
            policy.ListApprovals(pb.ListApprovalsRequest(parent="models/nope/versions/1")),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]
    for call, code in cases:
        err = await refused(call)
        assert err.code() == code, err.details()


# -- protected aliases ----------------------------------------------------------------------


async def test_protected_aliases_need_an_approver_and_a_version_meeting_the_policy(
    registry: Stub,
    policy: PolicyServiceAsyncStub,
    collab: CollaborationServiceAsyncStub,
    registry_target: str,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    await set_policy(
        policy,
        required_metrics=[metric("accuracy", GE, 0.8)],
        required_approvals=1,
        protected_aliases=["production", "champion"],
    )

    def set_alias(stub: Stub, name: str, alias: str) -> Any:
        return stub.SetModelVersionAlias(rpb.SetModelVersionAliasRequest(name=name, alias=alias))

    def delete_alias(stub: Stub, alias: str) -> Any:
        return stub.DeleteModelVersionAlias(
            rpb.DeleteModelVersionAliasRequest(model=f"models/{MODEL}", alias=alias)
        )

    async with (
        caller(registry_target, migrated_database_url, "eddie", Role.EDITOR) as eddie,
        caller(registry_target, migrated_database_url, "alice", Role.APPROVER) as alice,
    ):
        before = await snapshot(migrated_database_url)
        denied = await refused(set_alias(eddie.registry, V1, "champion"))
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "approver role" in (denied.details() or "")
        assert "champion" in (denied.details() or "")
        assert await snapshot(migrated_database_url) == before
        # An unprotected alias is the editor's to move, whatever the policy.
        moved = await set_alias(eddie.registry, V1, "candidate")
        assert "candidate" in moved.aliases

        # The approver, on a version without its approval: refused, with the reason.
        before = await snapshot(migrated_database_url)
        unmet = await refused(set_alias(alice.registry, V1, "champion"))
        assert unmet.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert violations(unmet) == [("APPROVALS", V1, "has 0 of 1 approvals")]
        assert await snapshot(migrated_database_url) == before

        await approve(alice.policy, V1)
        held = await set_alias(alice.registry, V1, "champion")
        assert "champion" in held.aliases

        # An open flag on the target blocks it as it blocks promotion.
        await approve(alice.policy, V2)
        flag = await collab.CreateFlag(
            cpb.CreateFlagRequest(
                parent=V2, flag=co.Flag(severity=co.FLAG_SEVERITY_LOW, reason="typo")
            )
        )
        flagged = await refused(set_alias(alice.registry, V2, "champion"))
        assert violations(flagged) == [("FLAG", flag.name, "LOW: typo")]

        denied = await refused(delete_alias(eddie.registry, "champion"))
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
        removed = await delete_alias(alice.registry, "champion")
        assert removed.name == V1
        assert "champion" not in removed.aliases
        # Deleting an unprotected alias stays open to editors.
        await delete_alias(eddie.registry, "candidate")


# -- the policy itself ----------------------------------------------------------------------


async def test_a_model_without_a_policy_has_the_default(
    registry: Stub, policy: PolicyServiceAsyncStub
) -> None:
    await seed(registry)
    got = await policy.GetPromotionPolicy(pb.GetPromotionPolicyRequest(name=POLICY))
    assert got.name == POLICY
    assert list(got.required_metrics) == []
    assert got.required_approvals == 0
    assert got.allow_open_flags is False
    assert list(got.protected_aliases) == []
    assert not got.HasField("update_time")
    assert got.updated_by == ""
    assert got.etag
    for name, code in (
        ("models/nope/promotionPolicy", grpc.StatusCode.NOT_FOUND),
        (f"models/{MODEL}", grpc.StatusCode.INVALID_ARGUMENT),
        (f"models/{MODEL}/policy", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        err = await refused(policy.GetPromotionPolicy(pb.GetPromotionPolicyRequest(name=name)))
        assert err.code() == code


async def test_updating_a_policy_replaces_it_audits_and_honours_the_etag(
    registry: Stub, policy: PolicyServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    default = await policy.GetPromotionPolicy(pb.GetPromotionPolicyRequest(name=POLICY))
    first = await policy.UpdatePromotionPolicy(
        pb.UpdatePromotionPolicyRequest(
            promotion_policy=rules(
                required_metrics=[metric("accuracy", GE, 0.9), metric("loss", LT, 0.2)],
                required_approvals=2,
                protected_aliases=["production"],
                etag=default.etag,
            )
        )
    )
    assert [(m.metric, m.comparator, m.threshold) for m in first.required_metrics] == [
        ("accuracy", GE, 0.9),
        ("loss", LT, 0.2),
    ]
    assert first.required_approvals == 2
    assert list(first.protected_aliases) == ["production"]
    assert first.updated_by == "test-admin"
    assert first.HasField("update_time")
    assert first.etag != default.etag
    assert await policy.GetPromotionPolicy(pb.GetPromotionPolicyRequest(name=POLICY)) == first

    before = await snapshot(migrated_database_url)
    stale = await refused(
        policy.UpdatePromotionPolicy(
            pb.UpdatePromotionPolicyRequest(promotion_policy=rules(etag=default.etag))
        )
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    assert await snapshot(migrated_database_url) == before

    # The whole policy is replaced: what the request leaves out goes back to the default.
    second = await set_policy(policy, allow_open_flags=True, etag=first.etag)
    assert list(second.required_metrics) == []
    assert second.required_approvals == 0
    assert second.allow_open_flags is True
    assert list(second.protected_aliases) == []

    rows = [r for r in await helpers.audit_rows(migrated_database_url)]
    ours = [r for r in rows if r["action"] == "UpdatePromotionPolicy"]
    assert [r["resource"] for r in ours] == [POLICY, POLICY]
    assert ours[0]["before"] == {
        "required_metrics": [],
        "required_approvals": 0,
        "allow_open_flags": False,
        "protected_aliases": [],
        "etag": default.etag,
    }
    assert ours[0]["after"] == {
        "required_metrics": ["accuracy >= 0.9", "loss < 0.2"],
        "required_approvals": 2,
        "allow_open_flags": False,
        "protected_aliases": ["production"],
        "etag": first.etag,
    }
    assert ours[1]["before"] == ours[0]["after"]
    assert ours[1]["after"]["allow_open_flags"] is True


async def test_bad_policies_are_refused_field_by_field_and_change_nothing(
    registry: Stub, policy: PolicyServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    before = await snapshot(migrated_database_url)
    err = await refused(
        policy.UpdatePromotionPolicy(
            pb.UpdatePromotionPolicyRequest(
                promotion_policy=rules(
                    required_metrics=[
                        metric("accuracy", GE, 0.9),
                        metric("bad key!", GE, 0.5),
                        metric("loss", pp.COMPARATOR_UNSPECIFIED, 0.2),
                        metric("f1", GE, math.inf),
                    ],
                    required_approvals=33,
                    protected_aliases=["production", "latest", "9lives"],
                )
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert helpers.error_details(err).bad_request_fields == [
        "promotion_policy.required_metrics[2].comparator",
        "promotion_policy.required_metrics[1].metric",
        "promotion_policy.required_metrics[3].threshold",
        "promotion_policy.required_approvals",
        "promotion_policy.protected_aliases[1]",
        "promotion_policy.protected_aliases[2]",
    ]
    for bad in (
        rules(required_approvals=-1),
        rules(required_metrics=[metric(f"m{i}", GE, 0.0) for i in range(65)]),
        rules(protected_aliases=[f"a{i}" for i in range(33)]),
        pp.PromotionPolicy(name=f"models/{MODEL}"),
        pp.PromotionPolicy(),
    ):
        err = await refused(
            policy.UpdatePromotionPolicy(pb.UpdatePromotionPolicyRequest(promotion_policy=bad))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert helpers.error_details(err).bad_request_fields
    missing = await refused(
        policy.UpdatePromotionPolicy(
            pb.UpdatePromotionPolicyRequest(
                promotion_policy=pp.PromotionPolicy(name="models/nope/promotionPolicy")
            )
        )
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert await snapshot(migrated_database_url) == before


@pytest.mark.parametrize(
    ("role", "model"),
    [(Role.EDITOR, None), (Role.APPROVER, None), (Role.ADMIN, OTHER_MODEL)],
    ids=["editor", "approver", "admin-on-another-model"],
)
async def test_only_admins_on_the_model_change_its_policy(
    role: Role,
    model: str | None,
    registry: Stub,
    registry_target: str,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    before = await snapshot(migrated_database_url)
    async with caller(registry_target, migrated_database_url, "mallory", role, model) as c:
        err = await refused(set_policy(c.policy, required_approvals=0))
        # Reading it needs no more than being a caller.
        await c.policy.GetPromotionPolicy(pb.GetPromotionPolicyRequest(name=POLICY))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin" in (err.details() or "")
    assert await snapshot(migrated_database_url) == before

    async with caller(registry_target, migrated_database_url, "ada", Role.ADMIN, MODEL) as ada:
        updated = await set_policy(ada.policy, required_approvals=1)
    assert updated.updated_by == "ada"


async def test_deleting_the_model_takes_its_policy_and_approvals(
    registry: Stub, policy: PolicyServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    await set_policy(policy, required_approvals=1)
    await approve(policy, V1)
    await registry.DeleteModel(rpb.DeleteModelRequest(name=f"models/{MODEL}", force=True))
    tables = await snapshot(migrated_database_url)
    assert tables["approvals"] == []
    assert tables["promotion_policies"] == []
    err = await refused(policy.GetPromotionPolicy(pb.GetPromotionPolicyRequest(name=POLICY)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
