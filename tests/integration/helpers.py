"""Shared by the integration tests: a small seeded world, table snapshots, error details."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support.auth import make_token
from support.server import authenticated_channel, running_server
from support.stores import StoreEndpoints, unique_name

from modelregistry.storage.migrate import migrate
from modelregistry.v1 import model_pb2, model_version_pb2, registry_service_pb2_grpc
from modelregistry.v1 import registry_service_pb2 as pb

Stub = registry_service_pb2_grpc.RegistryServiceStub

# Every table a mutation could touch, in the order a reader would look at them.
TABLES = (
    "models",
    "model_versions",
    "model_aliases",
    "alias_changes",
    "stage_transitions",
    "audit_events",
    "server_secrets",
)

ERROR_DOMAIN = "modelregistry"

# What must never reach a caller: driver or Python internals.
_LEAKS = re.compile(
    r"Traceback|File \"|asyncpg|psycopg|sqlstate|\bSELECT\b|\bINSERT\b|"
    r"\b[A-Z][a-z]+(?:[A-Z][a-z]*)*(?:Error|Exception)\b|<[a-z_.]+ object at 0x"
)


# -- a server of our own, for fixtures wider than one test ---------------------------------


@contextlib.asynccontextmanager
async def fresh_database(endpoints: StoreEndpoints) -> AsyncIterator[str]:
    """DSN of a new, migrated database, dropped on exit."""
    name = unique_name("modelreg_helpers")
    admin = await asyncpg.connect(endpoints.admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        dsn = endpoints.database_url(name)
        await migrate(dsn)
        yield dsn
    finally:
        if endpoints.postgres is None or endpoints.postgres.running:
            admin = await asyncpg.connect(endpoints.admin_database_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@contextlib.asynccontextmanager
async def running_registry(dsn: str, endpoints: StoreEndpoints) -> AsyncIterator[Stub]:
    """A client of a server running in this process on `dsn` and a fresh bucket."""
    bucket = unique_name("world", separator="-")
    await asyncio.to_thread(endpoints.s3_client().make_bucket, bucket)
    token = await make_token(dsn)
    async with (
        running_server(dsn, endpoints, bucket) as target,
        authenticated_channel(target, token) as channel,
    ):
        yield Stub(channel)


# -- database snapshots -----------------------------------------------------------------------


async def snapshot(dsn_or_conn: str | asyncpg.Connection) -> dict[str, list[str]]:
    """Every row of every registry table, as canonical JSON text, in a stable order."""
    if not isinstance(dsn_or_conn, str):
        return await _snapshot(dsn_or_conn)
    conn = await asyncpg.connect(dsn_or_conn)
    try:
        return await _snapshot(conn)
    finally:
        await conn.close()


async def _snapshot(conn: asyncpg.Connection) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    for table in TABLES:
        rows = await conn.fetch(
            f"SELECT to_jsonb(t)::text AS row FROM {table} t ORDER BY 1"  # noqa: S608
        )
        tables[table] = [r["row"] for r in rows]
    tables["audit_events.count"] = [str(len(tables["audit_events"]))]
    return tables


async def audit_rows(dsn: str) -> list[dict[str, Any]]:
    """The audit log, oldest first, with `before`/`after` decoded."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        rows = await conn.fetch("SELECT * FROM audit_events ORDER BY sequence")
        return [dict(r) for r in rows]
    finally:
        await conn.close()


# -- errors -------------------------------------------------------------------------------


@dataclass
class ErrorDetails:
    code: grpc.StatusCode
    message: str
    error_infos: list[error_details_pb2.ErrorInfo] = field(default_factory=list)
    bad_request_fields: list[str] = field(default_factory=list)
    precondition_subjects: list[str] = field(default_factory=list)


def error_details(err: grpc.aio.AioRpcError) -> ErrorDetails:
    """The status of a failed call with its google.rpc details unpacked."""
    details = ErrorDetails(code=err.code(), message=err.details() or "")
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return details
    assert status.message == details.message
    for any_detail in status.details:
        if any_detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_detail.Unpack(info)
            details.error_infos.append(info)
        elif any_detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            any_detail.Unpack(bad)
            details.bad_request_fields.extend(v.field for v in bad.field_violations)
        elif any_detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            any_detail.Unpack(failure)
            details.precondition_subjects.extend(v.subject for v in failure.violations)
    return details


def assert_clean_message(message: str) -> None:
    """A message a person can act on: present, and free of driver or Python internals."""
    assert message.strip(), "the error message is empty"
    leak = _LEAKS.search(message)
    assert leak is None, f"the error message leaks {leak.group(0)!r}: {message!r}"


# -- the seeded world -----------------------------------------------------------------------

MODEL = "alpha"
EMPTY_MODEL = "beta"
PRODUCTION = f"models/{MODEL}/versions/1"
STAGING = f"models/{MODEL}/versions/2"
DEVELOPMENT = f"models/{MODEL}/versions/3"
ARCHIVED = f"models/{MODEL}/versions/4"
ALIAS = "champion"
SECOND_ALIAS = "challenger"


@dataclass
class World:
    """What `seed_world` made: names, current and stale etags, and page tokens to misuse."""

    models: dict[str, model_pb2.Model] = field(default_factory=dict)
    versions: dict[str, model_version_pb2.ModelVersion] = field(default_factory=dict)
    stale_model_etag: str = ""
    stale_version_etag: str = ""
    models_token: str = ""
    versions_token: str = ""
    versions_token_filter: str = ""
    transitions_token: str = ""
    alias_changes_token: str = ""


async def create_version(
    registry: Stub, model: str = MODEL, **fields: Any
) -> model_version_pb2.ModelVersion:
    request = pb.CreateModelVersionRequest(
        parent=f"models/{model}", model_version=model_version_pb2.ModelVersion(**fields)
    )
    version: model_version_pb2.ModelVersion = await registry.CreateModelVersion(request)
    return version


async def transition(
    registry: Stub, name: str, stage: int, **fields: Any
) -> pb.TransitionModelVersionStageResponse:
    request = pb.TransitionModelVersionStageRequest(name=name, stage=stage, **fields)
    response: pb.TransitionModelVersionStageResponse = await registry.TransitionModelVersionStage(
        request
    )
    return response


async def seed_world(registry: Stub) -> World:
    """Model `alpha` with versions 1 PRODUCTION, 2 STAGING, 3 DEVELOPMENT, 4 ARCHIVED, aliases
    `champion` -> 1 and `challenger` -> 2; model `beta` without versions, updated once."""
    world = World()
    for model_id in (MODEL, EMPTY_MODEL):
        world.models[model_id] = await registry.CreateModel(
            pb.CreateModelRequest(
                model_id=model_id,
                model=model_pb2.Model(description=f"{model_id} model", labels={"team": "ml"}),
            )
        )
    world.stale_model_etag = world.models[EMPTY_MODEL].etag
    world.models[EMPTY_MODEL] = await registry.UpdateModel(
        pb.UpdateModelRequest(
            model=model_pb2.Model(name=f"models/{EMPTY_MODEL}", owner="nlp"),
            update_mask={"paths": ["owner"]},
        )
    )
    for number in range(1, 5):
        await create_version(
            registry,
            description=f"v{number}",
            metrics={"accuracy": 0.5 + number / 10},
            parameters={"epochs": str(number)},
            input_schema=model_version_pb2.Schema(
                fields=[
                    model_version_pb2.SchemaField(
                        name="text", dtype=model_version_pb2.DATA_TYPE_STRING, shape=[-1]
                    )
                ]
            ),
        )
    first = await registry.GetModelVersion(pb.GetModelVersionRequest(name=PRODUCTION))
    world.stale_version_etag = first.etag
    await transition(registry, PRODUCTION, model_version_pb2.STAGE_PRODUCTION)
    await transition(registry, STAGING, model_version_pb2.STAGE_STAGING)
    await transition(registry, ARCHIVED, model_version_pb2.STAGE_ARCHIVED)
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=PRODUCTION, alias=ALIAS)
    )
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=STAGING, alias=SECOND_ALIAS)
    )
    for name in (PRODUCTION, STAGING, DEVELOPMENT, ARCHIVED):
        world.versions[name] = await registry.GetModelVersion(pb.GetModelVersionRequest(name=name))
    world.models[MODEL] = await registry.GetModel(pb.GetModelRequest(name=f"models/{MODEL}"))

    world.models_token = (
        await registry.ListModels(pb.ListModelsRequest(page_size=1))
    ).next_page_token
    world.versions_token_filter = "metrics.accuracy > 0.5"
    world.versions_token = (
        await registry.ListModelVersions(
            pb.ListModelVersionsRequest(
                parent=f"models/{MODEL}", page_size=1, filter=world.versions_token_filter
            )
        )
    ).next_page_token
    world.transitions_token = (
        await registry.ListStageTransitions(
            pb.ListStageTransitionsRequest(parent=f"models/{MODEL}/versions/-", page_size=1)
        )
    ).next_page_token
    world.alias_changes_token = (
        await registry.ListAliasChanges(
            pb.ListAliasChangesRequest(parent=f"models/{MODEL}", page_size=1)
        )
    ).next_page_token
    for token in (
        world.models_token,
        world.versions_token,
        world.transitions_token,
        world.alias_changes_token,
    ):
        assert token, "the seeded world should span more than one page everywhere"
    return world


def tamper(token: str) -> str:
    """The token with one character in the middle changed (still valid base64url)."""
    middle = len(token) // 2
    replacement = "A" if token[middle] != "A" else "B"
    return token[:middle] + replacement + token[middle + 1 :]
