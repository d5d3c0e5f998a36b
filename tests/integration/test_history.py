"""ListModelHistory through the generated client: which version held a stage, an alias or a
deployment environment, over time and at a given instant, paged without repeats or gaps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from integration import helpers
from integration.helpers import Stub, create_version, transition
from support.stubs import CollaborationServiceAsyncStub

from modelregistry.v1 import collaboration_pb2 as co
from modelregistry.v1 import collaboration_service_pb2 as cpb
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import registry_service_pb2 as pb

MODEL = "hist"
PARENT = f"models/{MODEL}"
V1, V2, V3 = (f"{PARENT}/versions/{n}" for n in (1, 2, 3))
STAGE, ALIAS, DEPLOYMENT = pb.HOLDING_KIND_STAGE, pb.HOLDING_KIND_ALIAS, pb.HOLDING_KIND_DEPLOYMENT
# Server and test share a clock; a pause makes "between two changes" unambiguous.
PAUSE_S = 0.02


@pytest.fixture
def collab(channel: grpc.aio.Channel) -> CollaborationServiceAsyncStub:
    return CollaborationServiceAsyncStub(channel)


@dataclass
class Marks:
    """Instants between the steps of `build_history`."""

    before: datetime
    created: datetime
    first_release: datetime
    second_release: datetime
    wound_down: datetime


async def mark() -> datetime:
    await asyncio.sleep(PAUSE_S)
    now = datetime.now(UTC)
    await asyncio.sleep(PAUSE_S)
    return now


async def deploy(
    collab: CollaborationServiceAsyncStub,
    version: str,
    environment: str,
    status: co.DeploymentStatus.ValueType,
) -> str:
    made = await collab.CreateDeployment(
        cpb.CreateDeploymentRequest(
            parent=version,
            deployment=co.Deployment(
                environment=environment,
                endpoint="https://serve.example/m",
                status=status,
            ),
        )
    )
    return str(made.name)


async def build_history(registry: Stub, collab: CollaborationServiceAsyncStub) -> Marks:
    """v1 then v2 in PRODUCTION (v1 archived), `champion` v1 -> v2 then deleted, prod-eu
    deployed v1 then v2 then retired; v3 stays in DEVELOPMENT throughout."""
    await registry.CreateModel(pb.CreateModelRequest(model_id=MODEL))
    before = await mark()
    for _ in range(3):
        await create_version(registry, MODEL)
    created = await mark()

    await transition(registry, V1, mv.STAGE_PRODUCTION)
    await registry.SetModelVersionAlias(pb.SetModelVersionAliasRequest(name=V1, alias="champion"))
    await deploy(collab, V1, "prod-eu", co.DEPLOYMENT_STATUS_ACTIVE)
    first_release = await mark()

    await transition(registry, V2, mv.STAGE_STAGING)
    await transition(registry, V2, mv.STAGE_PRODUCTION, archive_existing=True)
    await registry.SetModelVersionAlias(pb.SetModelVersionAliasRequest(name=V2, alias="champion"))
    second = await deploy(collab, V2, "prod-eu", co.DEPLOYMENT_STATUS_PENDING)
    second_release = await mark()

    await registry.DeleteModelVersionAlias(
        pb.DeleteModelVersionAliasRequest(model=PARENT, alias="champion")
    )
    await collab.UpdateDeploymentStatus(
        cpb.UpdateDeploymentStatusRequest(name=second, status=co.DEPLOYMENT_STATUS_RETIRED)
    )
    # Recorded as failed: it never held the environment.
    await deploy(collab, V3, "canary", co.DEPLOYMENT_STATUS_FAILED)
    wound_down = await mark()
    return Marks(before, created, first_release, second_release, wound_down)


def stamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def at(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


async def history(registry: Stub, **fields: Any) -> list[pb.HistoryEntry]:
    response = await registry.ListModelHistory(pb.ListModelHistoryRequest(parent=PARENT, **fields))
    assert response.next_page_token == ""
    return list(response.entries)


async def holder(registry: Stub, kind: int, key: str, moment: datetime) -> list[str]:
    entries = await history(registry, kind=kind, key=key, as_of_time=stamp(moment))
    return [e.version for e in entries]


def rows(entries: list[pb.HistoryEntry]) -> list[tuple[str, str, bool]]:
    """(key, version, still held) of each entry."""
    return [(e.key, e.version, not e.HasField("end_time")) for e in entries]


async def test_who_held_a_stage_alias_or_environment_at_a_time(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    m = await build_history(registry, collab)

    expected: dict[datetime, dict[str, list[str]]] = {
        m.before: {"PRODUCTION": [], "DEVELOPMENT": [], "champion": [], "prod-eu": []},
        m.created: {"PRODUCTION": [], "DEVELOPMENT": [V1, V2, V3], "champion": [], "prod-eu": []},
        m.first_release: {
            "PRODUCTION": [V1],
            "DEVELOPMENT": [V2, V3],
            "ARCHIVED": [],
            "champion": [V1],
            "prod-eu": [V1],
        },
        m.second_release: {
            "PRODUCTION": [V2],
            "ARCHIVED": [V1],
            "STAGING": [],
            "DEVELOPMENT": [V3],
            "champion": [V2],
            "prod-eu": [V2],
        },
        m.wound_down: {
            "PRODUCTION": [V2],
            "champion": [],
            "prod-eu": [],
            "canary": [],
        },
    }
    kinds = {"champion": ALIAS, "prod-eu": DEPLOYMENT, "canary": DEPLOYMENT}
    for moment, holders in expected.items():
        for key, versions in holders.items():
            found = await holder(registry, kinds.get(key, STAGE), key, moment)
            assert found == versions, (moment, key)

    # Everything held at one instant, oldest start first.
    snapshot = await history(registry, as_of_time=stamp(m.second_release))
    assert [(e.kind, e.key, e.version) for e in snapshot] == [
        (STAGE, "DEVELOPMENT", V3),
        (STAGE, "ARCHIVED", V1),
        (STAGE, "PRODUCTION", V2),
        (ALIAS, "champion", V2),
        (DEPLOYMENT, "prod-eu", V2),
    ]


async def test_the_full_timeline_ends_each_period_where_the_next_begins(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    m = await build_history(registry, collab)

    production = await history(registry, kind=STAGE, key="PRODUCTION")
    assert rows(production) == [("PRODUCTION", V1, False), ("PRODUCTION", V2, True)]
    assert production[0].end_time == production[1].start_time  # archived as v2 was promoted
    assert {e.principal for e in production} == {"test-admin"}
    assert m.first_release > at(production[0].start_time) > m.created
    assert m.second_release > at(production[1].start_time) > m.first_release

    champion = await history(registry, kind=ALIAS, key="champion")
    assert rows(champion) == [("champion", V1, False), ("champion", V2, False)]
    assert champion[0].end_time == champion[1].start_time
    assert m.wound_down > at(champion[1].end_time) > m.second_release

    deployments = await history(registry, kind=DEPLOYMENT)
    assert rows(deployments) == [("prod-eu", V1, False), ("prod-eu", V2, False)]
    assert deployments[0].end_time == deployments[1].start_time
    assert m.wound_down > at(deployments[1].end_time) > m.second_release  # retired

    stages = await history(registry, kind=STAGE)
    assert rows(stages) == [
        ("DEVELOPMENT", V1, False),
        ("DEVELOPMENT", V2, False),
        ("DEVELOPMENT", V3, True),
        ("PRODUCTION", V1, False),
        ("STAGING", V2, False),
        ("ARCHIVED", V1, True),
        ("PRODUCTION", V2, True),
    ]
    # A version holds DEVELOPMENT from its creation until it first moves.
    v1 = await registry.GetModelVersion(pb.GetModelVersionRequest(name=V1))
    assert stages[0].start_time == v1.create_time
    assert stages[0].end_time == stages[3].start_time

    everything = await history(registry)
    assert len(everything) == len(stages) + len(champion) + len(deployments)
    starts = [at(e.start_time) for e in everything]
    assert starts == sorted(starts)


async def test_history_pages_cover_the_timeline_once_and_tokens_are_bound_to_the_filter(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    await build_history(registry, collab)
    whole = await history(registry)

    paged: list[pb.HistoryEntry] = []
    token = ""
    while True:
        page = await registry.ListModelHistory(
            pb.ListModelHistoryRequest(parent=PARENT, page_size=2, page_token=token)
        )
        assert len(page.entries) <= 2
        paged.extend(page.entries)
        token = page.next_page_token
        if not token:
            break
    assert paged == whole

    first = await registry.ListModelHistory(pb.ListModelHistoryRequest(parent=PARENT, page_size=1))
    for other in (
        pb.ListModelHistoryRequest(parent=PARENT, kind=STAGE, page_token=first.next_page_token),
        pb.ListModelHistoryRequest(
            parent=PARENT, as_of_time=stamp(datetime.now(UTC)), page_token=first.next_page_token
        ),
        pb.ListModelHistoryRequest(parent=PARENT, page_token=helpers.tamper(first.next_page_token)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.ListModelHistory(other)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert helpers.error_details(refused.value).bad_request_fields == ["page_token"]


async def test_bad_history_requests(registry: Stub) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id=MODEL))
    assert await history(registry) == []
    cases: list[tuple[pb.ListModelHistoryRequest, grpc.StatusCode, str | None]] = [
        (pb.ListModelHistoryRequest(parent="models/nope"), grpc.StatusCode.NOT_FOUND, None),
        (pb.ListModelHistoryRequest(parent=V1), grpc.StatusCode.INVALID_ARGUMENT, "parent"),
        (pb.ListModelHistoryRequest(parent="models/-"), grpc.StatusCode.INVALID_ARGUMENT, "parent"),
        (
            pb.ListModelHistoryRequest(parent=PARENT, key="PRODUCTION"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "key",
        ),
        (
            pb.ListModelHistoryRequest(parent=PARENT, kind=STAGE, key="production"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "key",
        ),
        (
            pb.ListModelHistoryRequest(parent=PARENT, kind=ALIAS, key="latest"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "key",
        ),
        (
            pb.ListModelHistoryRequest(parent=PARENT, kind=DEPLOYMENT, key="Prod EU"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "key",
        ),
        (
            pb.ListModelHistoryRequest(parent=PARENT, kind=42),  # type: ignore[arg-type]
            grpc.StatusCode.INVALID_ARGUMENT,
            "kind",
        ),
        (
            pb.ListModelHistoryRequest(parent=PARENT, page_size=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_size",
        ),
        (
            pb.ListModelHistoryRequest(parent=PARENT, as_of_time=Timestamp(seconds=2**62)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "as_of_time",
        ),
    ]
    for request, code, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.ListModelHistory(request)
        assert refused.value.code() == code, request
        helpers.assert_clean_message(refused.value.details() or "")
        if field is not None:
            assert helpers.error_details(refused.value).bad_request_fields == [field]


async def test_a_deleted_version_takes_its_stage_and_deployment_history_along(
    registry: Stub, collab: CollaborationServiceAsyncStub
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id=MODEL))
    await create_version(registry, MODEL)
    await create_version(registry, MODEL)
    await transition(registry, V1, mv.STAGE_STAGING)
    await registry.SetModelVersionAlias(pb.SetModelVersionAliasRequest(name=V1, alias="champion"))
    await deploy(collab, V1, "prod-eu", co.DEPLOYMENT_STATUS_ACTIVE)

    await registry.DeleteModelVersion(pb.DeleteModelVersionRequest(name=V1))

    remaining = await history(registry)
    assert [(e.kind, e.key, e.version) for e in remaining] == [
        (STAGE, "DEVELOPMENT", V2),
        # The alias history belongs to the model: its move away on deletion ends the period.
        (ALIAS, "champion", V1),
    ]
    assert remaining[1].HasField("end_time")
    assert at(remaining[1].end_time) - at(remaining[1].start_time) < timedelta(minutes=5)
