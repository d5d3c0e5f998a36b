"""Bearer tokens and roles: who may call, and what each role may change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.auth import make_token
from support.server import authenticated_channel
from support.stubs import RegistryServiceAsyncStub

from modelregistry.domain.access import Role
from modelregistry.service.auth import revoke_token
from modelregistry.storage.database import Database
from modelregistry.v1 import model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb

GET = pb.GetModelRequest(name="models/shared")


@pytest.fixture
async def seeded(registry: RegistryServiceAsyncStub) -> None:
    for model_id in ("shared", "other"):
        await registry.CreateModel(pb.CreateModelRequest(model_id=model_id))
        await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent=f"models/{model_id}"))


# A stub that calls as a new principal holding `role` (on `model`, or everywhere).
AsRole = Callable[[Role, str | None], Awaitable[RegistryServiceAsyncStub]]


@pytest.fixture
async def as_role(
    registry_target: str, migrated_database_url: str, seeded: None
) -> AsyncIterator[AsRole]:
    channels: list[grpc.aio.Channel] = []

    async def stub_for(role: Role, model: str | None = None) -> RegistryServiceAsyncStub:
        token = await make_token(
            migrated_database_url, f"{role.label}-{model or 'all'}", role, model=model
        )
        channel = authenticated_channel(registry_target, token)
        channels.append(channel)
        return RegistryServiceAsyncStub(channel)

    yield stub_for
    for channel in channels:
        await channel.close()


async def _code(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _anonymous_code(target: str, token: str | None) -> grpc.StatusCode:
    metadata = [("authorization", f"Bearer {token}")] if token is not None else None
    async with grpc.aio.insecure_channel(target) as channel:
        return await _code(RegistryServiceAsyncStub(channel).GetModel(GET, metadata=metadata))


async def test_missing_unknown_expired_and_revoked_tokens_are_unauthenticated(
    registry_target: str, migrated_database_url: str, seeded: None
) -> None:
    expired = await make_token(
        migrated_database_url, "old", Role.ADMIN, expires_in=timedelta(seconds=-1)
    )
    revoked = await make_token(migrated_database_url, "gone", Role.ADMIN)
    db = await Database.connect(migrated_database_url, min_size=1, max_size=1)
    try:
        async with db.connection() as conn:
            token_id = await conn.fetchval(
                "SELECT id::text FROM tokens ORDER BY create_time DESC LIMIT 1"
            )
        assert await revoke_token(db, token_id)
    finally:
        await db.close()

    for token in (None, "", "mrt_not-a-real-token", expired, revoked):
        assert await _anonymous_code(registry_target, token) == grpc.StatusCode.UNAUTHENTICATED


async def test_health_answers_without_a_token(registry_target: str) -> None:
    async with grpc.aio.insecure_channel(registry_target) as channel:
        # types-grpcio-health-checking's HealthStub leaves out Check and Watch.
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_viewer_reads_but_changes_nothing(as_role: AsRole) -> None:
    viewer = await as_role(Role.VIEWER, None)
    assert (await viewer.GetModel(GET)).name == "models/shared"
    assert await _code(viewer.CreateModel(pb.CreateModelRequest(model_id="new"))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert await _code(
        viewer.CreateModelVersion(pb.CreateModelVersionRequest(parent="models/shared"))
    ) == (grpc.StatusCode.PERMISSION_DENIED)
    listed = await viewer.ListModelVersions(pb.ListModelVersionsRequest(parent="models/shared"))
    assert len(listed.model_versions) == 1


async def test_an_editor_granted_on_one_model_edits_only_that_model(as_role: AsRole) -> None:
    editor = await as_role(Role.EDITOR, "shared")
    created = await editor.CreateModelVersion(pb.CreateModelVersionRequest(parent="models/shared"))
    assert created.created_by == "editor-shared"
    assert await _code(
        editor.CreateModelVersion(pb.CreateModelVersionRequest(parent="models/other"))
    ) == (grpc.StatusCode.PERMISSION_DENIED)
    assert await _code(editor.CreateModel(pb.CreateModelRequest(model_id="new"))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


async def test_promotion_to_production_needs_the_approver_role(as_role: AsRole) -> None:
    promote = pb.TransitionModelVersionStageRequest(
        name="models/shared/versions/1", stage=model_version_pb2.STAGE_PRODUCTION
    )
    editor = await as_role(Role.EDITOR, None)
    assert await _code(editor.TransitionModelVersionStage(promote)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    approver = await as_role(Role.APPROVER, "shared")
    moved = await approver.TransitionModelVersionStage(promote)
    assert moved.model_version.stage == model_version_pb2.STAGE_PRODUCTION


async def test_deleting_needs_the_admin_role(as_role: AsRole) -> None:
    delete = pb.DeleteModelRequest(name="models/other", force=True)
    approver = await as_role(Role.APPROVER, None)
    assert await _code(approver.DeleteModel(delete)) == grpc.StatusCode.PERMISSION_DENIED
    admin = await as_role(Role.ADMIN, None)
    await admin.DeleteModel(delete)
    assert await _code(admin.GetModel(pb.GetModelRequest(name="models/other"))) == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_a_grant_on_one_model_leaves_the_role_everywhere_as_it_was(
    registry_target: str, migrated_database_url: str, seeded: None
) -> None:
    admin = await make_token(migrated_database_url, "carol", Role.ADMIN)
    await make_token(migrated_database_url, "carol", Role.EDITOR, model="shared")
    async with authenticated_channel(registry_target, admin) as channel:
        await RegistryServiceAsyncStub(channel).CreateModel(
            pb.CreateModelRequest(model_id="carols")
        )
