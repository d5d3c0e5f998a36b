"""Comments, flags and deployments on versions, through the generated client: round trips,
threads, pages, bad input that changes nothing, one audit event per change, and the open
flag that blocks promotion to PRODUCTION until it is resolved."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from integration import helpers
from integration.helpers import Stub, create_version, transition
from support.auth import make_token
from support.server import authenticated_channel
from support.stubs import CollaborationServiceAsyncStub

from modelregistry.domain.access import Role
from modelregistry.v1 import collaboration_pb2 as co
from modelregistry.v1 import collaboration_service_pb2 as pb
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import registry_service_pb2 as rpb

PRINCIPAL = "test-admin"  # the admin_token fixture's principal
MODEL = "collab"
V1 = f"models/{MODEL}/versions/1"
V2 = f"models/{MODEL}/versions/2"
BY_ALIAS = f"models/{MODEL}/versions/champion"
TABLES = (*helpers.TABLES, "comments", "flags", "deployments")
MUTATING_RPCS = (
    "CreateComment",
    "UpdateComment",
    "DeleteComment",
    "CreateFlag",
    "ResolveFlag",
    "CreateDeployment",
    "UpdateDeploymentStatus",
)


@pytest.fixture
def collab(channel: grpc.aio.Channel) -> CollaborationServiceAsyncStub:
    return CollaborationServiceAsyncStub(channel)


async def seed(registry: Stub) -> None:
    """Model `collab` with versions 1 (alias `champion`) and 2."""
    await registry.CreateModel(rpb.CreateModelRequest(model_id=MODEL))
    await create_version(registry, MODEL)
    await create_version(registry, MODEL)
    await registry.SetModelVersionAlias(rpb.SetModelVersionAliasRequest(name=V1, alias="champion"))


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


def precondition_violations(err: grpc.aio.AioRpcError) -> list[Any]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    found: list[error_details_pb2.PreconditionFailure.Violation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            found.extend(failure.violations)
    return found


async def comment(collab: CollaborationServiceAsyncStub, parent: str, body: str, **kw: Any) -> Any:
    return await collab.CreateComment(
        pb.CreateCommentRequest(parent=parent, comment=co.Comment(body=body, **kw))
    )


async def edit(collab: CollaborationServiceAsyncStub, name: str, body: str) -> Any:
    return await collab.UpdateComment(
        pb.UpdateCommentRequest(comment=co.Comment(name=name, body=body))
    )


async def flag(collab: CollaborationServiceAsyncStub, parent: str = V1, **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "severity": co.FLAG_SEVERITY_HIGH,
        "reason": "toxic outputs on prompt set B",
    } | kw
    return await collab.CreateFlag(pb.CreateFlagRequest(parent=parent, flag=co.Flag(**fields)))


async def deploy(collab: CollaborationServiceAsyncStub, parent: str = V1, **kw: Any) -> Any:
    fields = {"environment": "prod-eu", "endpoint": "https://serve.example.com/llm"} | kw
    return await collab.CreateDeployment(
        pb.CreateDeploymentRequest(parent=parent, deployment=co.Deployment(**fields))
    )


# -- comments -------------------------------------------------------------------------------


async def test_comments_thread_and_list_oldest_first(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    await seed(registry)
    first = await comment(collab, BY_ALIAS, "accuracy looks off on long inputs")
    reply = await comment(collab, V1, "agreed, see run 42", parent_comment=first.name)
    # The parent may be named through the alias too; it is stored by number.
    second_reply = await comment(
        collab, V1, "fixed in v2", parent_comment=f"{BY_ALIAS}/comments/{first.name.split('/')[-1]}"
    )

    assert first.name.startswith(f"{V1}/comments/")
    assert first.author == PRINCIPAL
    assert first.parent_comment == ""
    assert first.create_time.seconds > 0
    assert reply.parent_comment == first.name
    assert second_reply.parent_comment == first.name
    listed = await collab.ListComments(pb.ListCommentsRequest(parent=BY_ALIAS))
    assert [c.name for c in listed.comments] == [first.name, reply.name, second_reply.name]
    assert listed.comments[1].body == "agreed, see run 42"
    assert listed.next_page_token == ""
    other = await collab.ListComments(pb.ListCommentsRequest(parent=V2))
    assert list(other.comments) == []


async def test_a_reply_must_answer_a_comment_of_the_same_version(
    registry: Stub, collab: CollaborationServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    on_v2 = await comment(collab, V2, "v2 remark")
    before = await snapshot(migrated_database_url)

    with pytest.raises(grpc.aio.AioRpcError) as wrong_version:
        await comment(collab, V1, "reply", parent_comment=on_v2.name)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await comment(collab, V1, "reply", parent_comment=f"{V1}/comments/999999")

    assert wrong_version.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert helpers.error_details(wrong_version.value).bad_request_fields == [
        "comment.parent_comment"
    ]
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert await snapshot(migrated_database_url) == before


async def test_deleting_comments(
    registry: Stub, collab: CollaborationServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    parent = await comment(collab, V1, "parent")
    reply = await comment(collab, V1, "reply", parent_comment=parent.name)
    before = await snapshot(migrated_database_url)

    with pytest.raises(grpc.aio.AioRpcError) as has_replies:
        await collab.DeleteComment(pb.DeleteCommentRequest(name=parent.name))
    assert has_replies.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert [v.subject for v in precondition_violations(has_replies.value)] == [reply.name]
    assert await snapshot(migrated_database_url) == before

    reply_id = reply.name.split("/")[-1]
    await collab.DeleteComment(pb.DeleteCommentRequest(name=f"{BY_ALIAS}/comments/{reply_id}"))
    await collab.DeleteComment(pb.DeleteCommentRequest(name=parent.name))
    listed = await collab.ListComments(pb.ListCommentsRequest(parent=V1))
    assert list(listed.comments) == []
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await collab.DeleteComment(pb.DeleteCommentRequest(name=parent.name))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_comments_page_without_repeats_or_gaps(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    await seed(registry)
    made = [(await comment(collab, V1, f"c{i}")).name for i in range(7)]

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await collab.ListComments(
            pb.ListCommentsRequest(parent=V1, page_size=3, page_token=token)
        )
        seen.extend(c.name for c in page.comments)
        pages += 1
        if page.next_page_token == "":
            break
        token = page.next_page_token
        if pages == 1:
            await comment(collab, V1, "added while paging")  # keyset: appears at the end
    assert seen[:7] == made
    assert len(seen) == 8
    assert pages == 3

    first = await collab.ListComments(pb.ListCommentsRequest(parent=V1, page_size=2))
    with pytest.raises(grpc.aio.AioRpcError) as other_parent:
        await collab.ListComments(
            pb.ListCommentsRequest(parent=V2, page_token=first.next_page_token)
        )
    assert other_parent.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as other_method:
        await collab.ListDeployments(
            pb.ListDeploymentsRequest(parent=V1, page_token=first.next_page_token)
        )
    assert other_method.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- flags ----------------------------------------------------------------------------------


async def test_flags_are_raised_listed_and_resolved_once(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    await seed(registry)
    high = await flag(collab, BY_ALIAS)
    low = await flag(collab, severity=co.FLAG_SEVERITY_LOW, reason="typo in the card")

    assert high.name.startswith(f"{V1}/flags/")
    assert high.state == co.FLAG_STATE_OPEN
    assert high.severity == co.FLAG_SEVERITY_HIGH
    assert high.raised_by == PRINCIPAL
    assert high.resolved_by == ""
    assert not high.HasField("resolve_time")

    resolved = await collab.ResolveFlag(
        pb.ResolveFlagRequest(name=low.name, resolution="card fixed")
    )
    assert resolved.state == co.FLAG_STATE_RESOLVED
    assert resolved.resolved_by == PRINCIPAL
    assert resolved.resolution == "card fixed"
    assert resolved.HasField("resolve_time")
    assert resolved.create_time == low.create_time

    every = await collab.ListFlags(pb.ListFlagsRequest(parent=V1))
    assert [f.name for f in every.flags] == [high.name, low.name]
    open_only = await collab.ListFlags(pb.ListFlagsRequest(parent=V1, state=co.FLAG_STATE_OPEN))
    assert [f.name for f in open_only.flags] == [high.name]
    done = await collab.ListFlags(pb.ListFlagsRequest(parent=V1, state=co.FLAG_STATE_RESOLVED))
    assert [f.name for f in done.flags] == [low.name]

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await collab.ResolveFlag(pb.ResolveFlagRequest(name=low.name, resolution="again"))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    unchanged = await collab.ListFlags(pb.ListFlagsRequest(parent=V1, state=co.FLAG_STATE_RESOLVED))
    assert unchanged.flags[0].resolution == "card fixed"


async def test_flag_page_tokens_are_bound_to_the_state_filter(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    await seed(registry)
    for _ in range(3):
        await flag(collab)
    page = await collab.ListFlags(
        pb.ListFlagsRequest(parent=V1, state=co.FLAG_STATE_OPEN, page_size=2)
    )
    assert len(page.flags) == 2
    assert page.next_page_token
    rest = await collab.ListFlags(
        pb.ListFlagsRequest(parent=V1, state=co.FLAG_STATE_OPEN, page_token=page.next_page_token)
    )
    assert len(rest.flags) == 1
    assert rest.next_page_token == ""
    with pytest.raises(grpc.aio.AioRpcError) as other_state:
        await collab.ListFlags(pb.ListFlagsRequest(parent=V1, page_token=page.next_page_token))
    assert other_state.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_open_flag_blocks_promotion_until_resolved(
    registry: Stub, collab: CollaborationServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    await transition(registry, V1, mv.STAGE_STAGING)
    high = await flag(collab)
    critical = await flag(collab, severity=co.FLAG_SEVERITY_CRITICAL, reason="leaks PII")
    resolved = await flag(collab, severity=co.FLAG_SEVERITY_LOW, reason="old")
    await collab.ResolveFlag(pb.ResolveFlagRequest(name=resolved.name, resolution="done"))
    before = await snapshot(migrated_database_url)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await transition(registry, BY_ALIAS, mv.STAGE_PRODUCTION)

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    violations = precondition_violations(refused.value)
    assert [(v.type, v.subject) for v in violations] == [
        ("FLAG", high.name),
        ("FLAG", critical.name),
    ]
    assert "HIGH" in violations[0].description
    assert "toxic outputs on prompt set B" in violations[0].description
    assert "CRITICAL" in violations[1].description
    assert "leaks PII" in violations[1].description
    helpers.assert_clean_message(refused.value.details() or "")
    assert await snapshot(migrated_database_url) == before
    # Other stage moves are not blocked by flags.
    await transition(registry, V1, mv.STAGE_ARCHIVED)
    await transition(registry, V1, mv.STAGE_STAGING)

    for open_flag in (high, critical):
        await collab.ResolveFlag(pb.ResolveFlagRequest(name=open_flag.name, resolution="fixed"))
    moved = await transition(registry, BY_ALIAS, mv.STAGE_PRODUCTION)
    assert moved.model_version.stage == mv.STAGE_PRODUCTION
    # A flag raised on a version already in PRODUCTION is recorded; it does not demote it.
    late = await flag(collab)
    assert late.state == co.FLAG_STATE_OPEN
    current = await registry.GetModelVersion(rpb.GetModelVersionRequest(name=V1))
    assert current.stage == mv.STAGE_PRODUCTION


# -- deployments ----------------------------------------------------------------------------


async def test_deployment_history_newest_first_and_status_changes(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    await seed(registry)
    canary = await deploy(collab, BY_ALIAS, environment="canary")
    prod = await deploy(collab, status=co.DEPLOYMENT_STATUS_ACTIVE)

    assert canary.name.startswith(f"{V1}/deployments/")
    assert canary.status == co.DEPLOYMENT_STATUS_PENDING
    assert canary.deployed_by == PRINCIPAL
    assert canary.update_time == canary.create_time
    assert prod.status == co.DEPLOYMENT_STATUS_ACTIVE

    active = await collab.UpdateDeploymentStatus(
        pb.UpdateDeploymentStatusRequest(name=canary.name, status=co.DEPLOYMENT_STATUS_ACTIVE)
    )
    assert active.status == co.DEPLOYMENT_STATUS_ACTIVE
    assert active.update_time.ToDatetime() > active.create_time.ToDatetime()
    assert active.create_time == canary.create_time

    history = await collab.ListDeployments(pb.ListDeploymentsRequest(parent=V1))
    assert [d.name for d in history.deployments] == [prod.name, canary.name]
    assert history.deployments[1].status == co.DEPLOYMENT_STATUS_ACTIVE
    paged = await collab.ListDeployments(pb.ListDeploymentsRequest(parent=V1, page_size=1))
    assert [d.name for d in paged.deployments] == [prod.name]
    rest = await collab.ListDeployments(
        pb.ListDeploymentsRequest(parent=V1, page_token=paged.next_page_token)
    )
    assert [d.name for d in rest.deployments] == [canary.name]
    assert rest.next_page_token == ""

    with pytest.raises(grpc.aio.AioRpcError) as same:
        await collab.UpdateDeploymentStatus(
            pb.UpdateDeploymentStatusRequest(name=canary.name, status=co.DEPLOYMENT_STATUS_ACTIVE)
        )
    assert same.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await collab.UpdateDeploymentStatus(
        pb.UpdateDeploymentStatusRequest(name=canary.name, status=co.DEPLOYMENT_STATUS_RETIRED)
    )
    with pytest.raises(grpc.aio.AioRpcError) as final:
        await collab.UpdateDeploymentStatus(
            pb.UpdateDeploymentStatusRequest(name=canary.name, status=co.DEPLOYMENT_STATUS_ACTIVE)
        )
    assert final.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_creates_are_idempotent_with_a_request_id(
    registry: Stub, collab: CollaborationServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: collab.CreateComment(
            pb.CreateCommentRequest(parent=V1, comment=co.Comment(body="x"), request_id="c-1")
        ),
        lambda: collab.CreateFlag(
            pb.CreateFlagRequest(
                parent=V1,
                flag=co.Flag(severity=co.FLAG_SEVERITY_LOW, reason="r"),
                request_id="f-1",
            )
        ),
        lambda: collab.CreateDeployment(
            pb.CreateDeploymentRequest(
                parent=V1,
                deployment=co.Deployment(environment="dev", endpoint="grpc://h:1"),
                request_id="d-1",
            )
        ),
    ]
    for call in calls:
        first = await call()
        events = len(await helpers.audit_rows(migrated_database_url))
        again = await call()
        assert again == first
        assert len(await helpers.audit_rows(migrated_database_url)) == events


# -- bad input and missing resources change nothing -----------------------------------------

Call = Callable[[CollaborationServiceAsyncStub], Awaitable[Any]]
MISSING_VERSION = f"models/{MODEL}/versions/9"
LONG = "x" * 8193

BAD_CALLS: list[tuple[str, grpc.StatusCode, str, Call]] = [
    ("comment/bad-parent", grpc.StatusCode.INVALID_ARGUMENT, "parent",
     lambda c: comment(c, "models/collab", "hi")),
    ("comment/empty-body", grpc.StatusCode.INVALID_ARGUMENT, "comment.body",
     lambda c: comment(c, V1, "")),
    ("comment/long-body", grpc.StatusCode.INVALID_ARGUMENT, "comment.body",
     lambda c: comment(c, V1, LONG)),
    ("comment/nul-body", grpc.StatusCode.INVALID_ARGUMENT, "comment.body",
     lambda c: comment(c, V1, "a\x00b")),
    ("comment/bad-parent-comment", grpc.StatusCode.INVALID_ARGUMENT, "comment.parent_comment",
     lambda c: comment(c, V1, "hi", parent_comment=f"{V1}/flags/1")),
    ("comment/long-request-id", grpc.StatusCode.INVALID_ARGUMENT, "request_id",
     lambda c: c.CreateComment(pb.CreateCommentRequest(
         parent=V1, comment=co.Comment(body="x"), request_id="r" * 129))),
    ("comment/missing-version", grpc.StatusCode.NOT_FOUND, "",
     lambda c: comment(c, MISSING_VERSION, "hi")),
    ("comment/missing-model", grpc.StatusCode.NOT_FOUND, "",
     lambda c: comment(c, "models/nobody/versions/1", "hi")),
    ("list-comments/negative-page-size", grpc.StatusCode.INVALID_ARGUMENT, "page_size",
     lambda c: c.ListComments(pb.ListCommentsRequest(parent=V1, page_size=-1))),
    ("list-comments/garbage-token", grpc.StatusCode.INVALID_ARGUMENT, "page_token",
     lambda c: c.ListComments(pb.ListCommentsRequest(parent=V1, page_token="garbage"))),
    ("list-comments/missing-version", grpc.StatusCode.NOT_FOUND, "",
     lambda c: c.ListComments(pb.ListCommentsRequest(parent=MISSING_VERSION))),
    ("update-comment/bad-name", grpc.StatusCode.INVALID_ARGUMENT, "comment.name",
     lambda c: edit(c, f"{V1}/comments/abc", "x")),
    ("update-comment/empty-body", grpc.StatusCode.INVALID_ARGUMENT, "comment.body",
     lambda c: edit(c, f"{V1}/comments/1", "")),
    ("update-comment/long-body", grpc.StatusCode.INVALID_ARGUMENT, "comment.body",
     lambda c: edit(c, f"{V1}/comments/1", LONG)),
    ("update-comment/missing", grpc.StatusCode.NOT_FOUND, "",
     lambda c: edit(c, f"{V1}/comments/999999", "x")),
    ("delete-comment/bad-name", grpc.StatusCode.INVALID_ARGUMENT, "name",
     lambda c: c.DeleteComment(pb.DeleteCommentRequest(name=f"{V1}/comments/abc"))),
    ("delete-comment/zero-id", grpc.StatusCode.INVALID_ARGUMENT, "name",
     lambda c: c.DeleteComment(pb.DeleteCommentRequest(name=f"{V1}/comments/0"))),
    ("delete-comment/missing", grpc.StatusCode.NOT_FOUND, "",
     lambda c: c.DeleteComment(pb.DeleteCommentRequest(name=f"{V1}/comments/999999"))),
    ("delete-comment/other-version", grpc.StatusCode.NOT_FOUND, "",
     lambda c: c.DeleteComment(pb.DeleteCommentRequest(name=f"{V2}/comments/1"))),
    ("flag/unspecified-severity", grpc.StatusCode.INVALID_ARGUMENT, "flag.severity",
     lambda c: flag(c, severity=co.FLAG_SEVERITY_UNSPECIFIED)),
    ("flag/unknown-severity", grpc.StatusCode.INVALID_ARGUMENT, "flag.severity",
     lambda c: flag(c, severity=42)),
    ("flag/empty-reason", grpc.StatusCode.INVALID_ARGUMENT, "flag.reason",
     lambda c: flag(c, reason="")),
    ("flag/long-reason", grpc.StatusCode.INVALID_ARGUMENT, "flag.reason",
     lambda c: flag(c, reason="é" * 2049)),
    ("flag/missing-version", grpc.StatusCode.NOT_FOUND, "",
     lambda c: flag(c, MISSING_VERSION)),
    ("list-flags/unknown-state", grpc.StatusCode.INVALID_ARGUMENT, "state",
     lambda c: c.ListFlags(pb.ListFlagsRequest(parent=V1, state=co.FlagState.ValueType(7)))),
    ("resolve/empty-resolution", grpc.StatusCode.INVALID_ARGUMENT, "resolution",
     lambda c: c.ResolveFlag(pb.ResolveFlagRequest(name=f"{V1}/flags/1", resolution=""))),
    ("resolve/bad-name", grpc.StatusCode.INVALID_ARGUMENT, "name",
     lambda c: c.ResolveFlag(pb.ResolveFlagRequest(name=f"{V1}/comments/1", resolution="r"))),
    ("resolve/missing", grpc.StatusCode.NOT_FOUND, "",
     lambda c: c.ResolveFlag(pb.ResolveFlagRequest(name=f"{V1}/flags/999999", resolution="r"))),
    ("deploy/empty-environment", grpc.StatusCode.INVALID_ARGUMENT, "deployment.environment",
     lambda c: deploy(c, environment="")),
    ("deploy/bad-environment", grpc.StatusCode.INVALID_ARGUMENT, "deployment.environment",
     lambda c: deploy(c, environment="Prod EU")),
    ("deploy/long-environment", grpc.StatusCode.INVALID_ARGUMENT, "deployment.environment",
     lambda c: deploy(c, environment="e" * 64)),
    ("deploy/empty-endpoint", grpc.StatusCode.INVALID_ARGUMENT, "deployment.endpoint",
     lambda c: deploy(c, endpoint="")),
    ("deploy/endpoint-without-scheme", grpc.StatusCode.INVALID_ARGUMENT, "deployment.endpoint",
     lambda c: deploy(c, endpoint="serve.example.com/llm")),
    ("deploy/long-endpoint", grpc.StatusCode.INVALID_ARGUMENT, "deployment.endpoint",
     lambda c: deploy(c, endpoint="https://h/" + "p" * 2040)),
    ("deploy/unknown-status", grpc.StatusCode.INVALID_ARGUMENT, "deployment.status",
     lambda c: deploy(c, status=9)),
    ("deploy/missing-version", grpc.StatusCode.NOT_FOUND, "",
     lambda c: deploy(c, MISSING_VERSION)),
    ("update-status/unspecified", grpc.StatusCode.INVALID_ARGUMENT, "status",
     lambda c: c.UpdateDeploymentStatus(pb.UpdateDeploymentStatusRequest(
         name=f"{V1}/deployments/1", status=co.DEPLOYMENT_STATUS_UNSPECIFIED))),
    ("update-status/missing", grpc.StatusCode.NOT_FOUND, "",
     lambda c: c.UpdateDeploymentStatus(pb.UpdateDeploymentStatusRequest(
         name=f"{V1}/deployments/999999", status=co.DEPLOYMENT_STATUS_ACTIVE))),
    ("list-deployments/bad-parent", grpc.StatusCode.INVALID_ARGUMENT, "parent",
     lambda c: c.ListDeployments(pb.ListDeploymentsRequest(parent="models/collab/versions/"))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "field", "call"),
    [(code, field, call) for _, code, field, call in BAD_CALLS],
    ids=[label for label, _, _, _ in BAD_CALLS],
)
async def test_bad_input_and_missing_resources_change_nothing(
    code: grpc.StatusCode,
    field: str,
    call: Call,
    registry: Stub,
    collab: CollaborationServiceAsyncStub,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    await comment(collab, V1, "existing")
    await flag(collab)
    await deploy(collab)
    before = await snapshot(migrated_database_url)

    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call(collab)

    details = helpers.error_details(failed.value)
    assert details.code == code, details.message
    if field:
        assert details.bad_request_fields == [field]
    helpers.assert_clean_message(details.message)
    assert await snapshot(migrated_database_url) == before


# -- audit ----------------------------------------------------------------------------------

Md = tuple[tuple[str, str], ...]
Scenario = Callable[[CollaborationServiceAsyncStub, Md], Awaitable[tuple[str, Any, Any]]]


async def audit_create_comment(c: CollaborationServiceAsyncStub, md: Md) -> tuple[str, Any, Any]:
    parent = await comment(c, V1, "first")
    made = await c.CreateComment(
        pb.CreateCommentRequest(
            parent=BY_ALIAS, comment=co.Comment(body="b", parent_comment=parent.name)
        ),
        metadata=md,
    )
    return made.name, None, {"author": PRINCIPAL, "parent_comment": parent.name}


async def audit_update_comment(c: CollaborationServiceAsyncStub, md: Md) -> tuple[str, Any, Any]:
    made = await comment(c, V1, "draft")
    await c.UpdateComment(
        pb.UpdateCommentRequest(comment=co.Comment(name=made.name, body="final text")),
        metadata=md,
    )
    summary = {"author": PRINCIPAL, "parent_comment": None}
    return made.name, summary | {"body_bytes": 5}, summary | {"body_bytes": 10}


async def audit_delete_comment(c: CollaborationServiceAsyncStub, md: Md) -> tuple[str, Any, Any]:
    made = await comment(c, V1, "bye")
    await c.DeleteComment(pb.DeleteCommentRequest(name=made.name), metadata=md)
    return made.name, {"author": PRINCIPAL, "parent_comment": None}, None


async def audit_create_flag(c: CollaborationServiceAsyncStub, md: Md) -> tuple[str, Any, Any]:
    made = await c.CreateFlag(
        pb.CreateFlagRequest(
            parent=BY_ALIAS, flag=co.Flag(severity=co.FLAG_SEVERITY_MEDIUM, reason="r")
        ),
        metadata=md,
    )
    return made.name, None, {"state": "OPEN", "severity": "MEDIUM", "raised_by": PRINCIPAL}


async def audit_resolve_flag(c: CollaborationServiceAsyncStub, md: Md) -> tuple[str, Any, Any]:
    made = await flag(c)
    await c.ResolveFlag(pb.ResolveFlagRequest(name=made.name, resolution="ok"), metadata=md)
    before = {"state": "OPEN", "severity": "HIGH", "raised_by": PRINCIPAL}
    after = before | {"state": "RESOLVED", "resolved_by": PRINCIPAL, "resolution": "ok"}
    return made.name, before, after


async def audit_create_deployment(c: CollaborationServiceAsyncStub, md: Md) -> tuple[str, Any, Any]:
    made = await c.CreateDeployment(
        pb.CreateDeploymentRequest(
            parent=BY_ALIAS, deployment=co.Deployment(environment="prod", endpoint="https://h")
        ),
        metadata=md,
    )
    return made.name, None, {"environment": "prod", "endpoint": "https://h", "status": "PENDING"}


async def audit_update_status(c: CollaborationServiceAsyncStub, md: Md) -> tuple[str, Any, Any]:
    made = await deploy(c)
    await c.UpdateDeploymentStatus(
        pb.UpdateDeploymentStatusRequest(name=made.name, status=co.DEPLOYMENT_STATUS_FAILED),
        metadata=md,
    )
    before = {"environment": "prod-eu", "endpoint": "https://serve.example.com/llm"}
    return made.name, before | {"status": "PENDING"}, before | {"status": "FAILED"}


SCENARIOS: list[tuple[str, Scenario]] = [
    ("CreateComment", audit_create_comment),
    ("UpdateComment", audit_update_comment),
    ("DeleteComment", audit_delete_comment),
    ("CreateFlag", audit_create_flag),
    ("ResolveFlag", audit_resolve_flag),
    ("CreateDeployment", audit_create_deployment),
    ("UpdateDeploymentStatus", audit_update_status),
]


def test_every_mutating_rpc_has_an_audit_scenario() -> None:
    assert {action for action, _ in SCENARIOS} == set(MUTATING_RPCS)
    service = pb.DESCRIPTOR.services_by_name["CollaborationService"]
    reads = set(service.methods_by_name) - set(MUTATING_RPCS)
    assert reads == {"ListComments", "ListFlags", "ListDeployments"}


@pytest.mark.parametrize(("action", "scenario"), SCENARIOS, ids=[a for a, _ in SCENARIOS])
async def test_a_mutation_writes_one_audit_event(
    action: str,
    scenario: Scenario,
    registry: Stub,
    collab: CollaborationServiceAsyncStub,
    migrated_database_url: str,
) -> None:
    await seed(registry)
    request_id = f"req-{uuid.uuid4()}"

    resource, before, after = await scenario(collab, (("x-request-id", request_id),))

    rows = await helpers.audit_rows(migrated_database_url)
    ours = [r for r in rows if r["request_id"] == request_id]
    assert len(ours) == 1, ours
    row = ours[0]
    assert row is rows[-1]
    assert row["action"] == action
    assert row["resource"] == resource
    assert resource.startswith(f"{V1}/")  # by number, though the request said `champion`
    assert row["principal"] == PRINCIPAL
    assert row["before"] == before
    assert row["after"] == after


async def test_reads_and_failures_write_no_audit_event(
    registry: Stub, collab: CollaborationServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    resolved = await flag(collab)
    await collab.ResolveFlag(pb.ResolveFlagRequest(name=resolved.name, resolution="x"))
    retired = await deploy(collab, status=co.DEPLOYMENT_STATUS_RETIRED)
    parent = await comment(collab, V1, "p")
    await comment(collab, V1, "r", parent_comment=parent.name)
    earlier = await helpers.audit_rows(migrated_database_url)

    await collab.ListComments(pb.ListCommentsRequest(parent=V1))
    await collab.ListFlags(pb.ListFlagsRequest(parent=V1))
    await collab.ListDeployments(pb.ListDeploymentsRequest(parent=V1))
    failing: list[Awaitable[Any]] = [
        collab.ResolveFlag(pb.ResolveFlagRequest(name=resolved.name, resolution="again")),
        collab.UpdateDeploymentStatus(
            pb.UpdateDeploymentStatusRequest(name=retired.name, status=co.DEPLOYMENT_STATUS_ACTIVE)
        ),
        collab.DeleteComment(pb.DeleteCommentRequest(name=parent.name)),
        comment(collab, MISSING_VERSION, "x"),
        flag(collab, reason=""),
    ]
    for call in failing:
        with pytest.raises(grpc.aio.AioRpcError):
            await call

    assert await helpers.audit_rows(migrated_database_url) == earlier


async def test_the_service_is_served_with_health(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="modelregistry.v1.CollaborationService")
    # The first status is set once the store monitor's first check answers.
    # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
    stream = health.Watch(request)  # type: ignore[attr-defined]
    async for response in stream:
        if response.status == health_pb2.HealthCheckResponse.SERVING:
            break
    stream.cancel()
    # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
    assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.SERVING  # type: ignore[attr-defined]


async def test_deleting_a_version_or_model_takes_its_collaboration_records(
    registry: Stub, collab: CollaborationServiceAsyncStub, migrated_database_url: str
) -> None:
    await seed(registry)
    for version in (V1, V2):
        parent = await comment(collab, version, "p")
        await comment(collab, version, "r", parent_comment=parent.name)
        await flag(collab, version)
        await deploy(collab, version)

    await registry.DeleteModelVersion(rpb.DeleteModelVersionRequest(name=V2))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await collab.ListComments(pb.ListCommentsRequest(parent=V2))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert len((await collab.ListComments(pb.ListCommentsRequest(parent=V1))).comments) == 2

    await registry.DeleteModel(rpb.DeleteModelRequest(name=f"models/{MODEL}", force=True))
    tables = await snapshot(migrated_database_url)
    assert (tables["comments"], tables["flags"], tables["deployments"]) == ([], [], [])


async def test_only_the_author_or_an_admin_edits_or_deletes_a_comment(
    registry: Stub, registry_target: str, migrated_database_url: str
) -> None:
    await seed(registry)
    alice_token = await make_token(migrated_database_url, "alice", Role.VIEWER)
    bob_token = await make_token(migrated_database_url, "bob", Role.APPROVER)
    async with (
        authenticated_channel(registry_target, alice_token) as alice_channel,
        authenticated_channel(registry_target, bob_token) as bob_channel,
    ):
        alice = CollaborationServiceAsyncStub(alice_channel)
        bob = CollaborationServiceAsyncStub(bob_channel)
        written = await comment(alice, V1, "first thoughts")
        before = await snapshot(migrated_database_url)

        for call in (edit(bob, written.name, "not yours"),
                     bob.DeleteComment(pb.DeleteCommentRequest(name=written.name))):  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "admin" in (refused.value.details() or "")
        assert await snapshot(migrated_database_url) == before

        edited = await edit(alice, written.name, "second thoughts")
        assert edited.body == "second thoughts"
        assert edited.update_time.ToDatetime() >= edited.create_time.ToDatetime()
        listed = await alice.ListComments(pb.ListCommentsRequest(parent=V1))
        assert [c.body for c in listed.comments] == ["second thoughts"]

    root_token = await make_token(migrated_database_url, "root", Role.ADMIN)
    async with authenticated_channel(registry_target, root_token) as root_channel:
        root = CollaborationServiceAsyncStub(root_channel)
        await root.DeleteComment(pb.DeleteCommentRequest(name=written.name))
        assert (await root.ListComments(pb.ListCommentsRequest(parent=V1))).comments == []
