"""AccessService through the generated client: tokens that authenticate and stop when revoked,
grants that change what a principal may do, admin-only management, one audit event per change,
and a secret that is shown once and stored, listed, audited or logged nowhere."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from integration import helpers
from support.auth import make_token
from support.server import authenticated_channel, running_server, s3_env
from support.stores import StoreEndpoints
from support.stubs import AccessServiceAsyncStub, RegistryServiceAsyncStub

from modelregistry.domain.access import Role
from modelregistry.service.auth import CACHE_TTL_S, revoke_token
from modelregistry.storage.database import Database
from modelregistry.v1 import access_pb2 as ap
from modelregistry.v1 import access_service_pb2 as pb
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import registry_service_pb2 as rpb

ADMIN = "test-admin"  # the admin_token fixture's principal
TABLES = ("principals", "model_grants", "tokens", "audit_events")
TOKEN_NAME = re.compile(r"^tokens/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MUTATING_RPCS = ("CreateToken", "RevokeToken", "SetGrant", "DeleteGrant")
MODELREG = str(Path(sys.executable).with_name("modelreg"))


@pytest.fixture
def access(channel: grpc.aio.Channel) -> AccessServiceAsyncStub:
    return AccessServiceAsyncStub(channel)


@pytest.fixture
async def connect(registry_target: str) -> AsyncIterator[Callable[[str], grpc.aio.Channel]]:
    """Channels authenticated by other tokens, closed at the end of the test."""
    channels: list[grpc.aio.Channel] = []

    def open_channel(secret: str) -> grpc.aio.Channel:
        channel = authenticated_channel(registry_target, secret)
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.close()


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def create_token(
    access: AccessServiceAsyncStub, principal: str, **fields: Any
) -> pb.CreateTokenResponse:
    response: pb.CreateTokenResponse = await access.CreateToken(
        pb.CreateTokenRequest(token=ap.Token(principal=principal, **fields))
    )
    return response


async def code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def failure(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def snapshot(dsn: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: [
                r["row"]
                for r in await conn.fetch(
                    f"SELECT to_jsonb(t)::text AS row FROM {table} t ORDER BY 1"  # noqa: S608
                )
            ]
            for table in TABLES
        }
    finally:
        await conn.close()


async def seed_models(registry: RegistryServiceAsyncStub, *model_ids: str) -> None:
    for model_id in model_ids:
        await registry.CreateModel(rpb.CreateModelRequest(model_id=model_id))
        await registry.CreateModelVersion(
            rpb.CreateModelVersionRequest(parent=f"models/{model_id}")
        )


def grant_rows(grants: Any) -> list[tuple[str, str, str]]:
    return [(g.principal, g.model, ap.Role.Name(g.role)) for g in grants]


# -- tokens -----------------------------------------------------------------------------------


async def test_a_created_token_authenticates_and_its_secret_is_shown_only_once(
    access: AccessServiceAsyncStub,
    connect: Callable[[str], grpc.aio.Channel],
    migrated_database_url: str,
) -> None:
    expires = datetime.now(UTC).replace(microsecond=123456) + timedelta(days=30)
    created = await create_token(
        access, "ci-pipeline", description="nightly CI", expire_time=ts(expires)
    )
    token = created.token
    assert TOKEN_NAME.match(token.name), token.name
    assert token.principal == "ci-pipeline"
    assert token.description == "nightly CI"
    assert token.expire_time.ToDatetime(UTC) == expires
    assert abs(token.create_time.ToDatetime(UTC) - datetime.now(UTC)) < timedelta(minutes=1)
    assert not token.HasField("revoke_time")
    secret = created.secret
    assert secret.startswith("mrt_")
    assert len(secret) > 40

    # The secret authenticates: a new principal is a viewer everywhere, and may read.
    as_ci = connect(secret)
    caller = await AccessServiceAsyncStub(as_ci).GetCaller(pb.GetCallerRequest())
    assert caller == pb.Caller(principal="ci-pipeline", role=ap.ROLE_VIEWER)
    await RegistryServiceAsyncStub(as_ci).ListModels(rpb.ListModelsRequest())

    # Listed without its secret; stored only as a SHA-256; never in the audit log.
    listed = await access.ListTokens(pb.ListTokensRequest(principal="ci-pipeline"))
    assert list(listed.tokens) == [token]
    assert secret.encode() not in listed.SerializeToString()
    digest = hashlib.sha256(secret.encode()).digest()
    conn = await asyncpg.connect(migrated_database_url)
    try:
        stored = await conn.fetchrow(
            "SELECT token_hash, to_jsonb(t)::text AS row FROM tokens t WHERE id = $1::uuid",
            token.name.removeprefix("tokens/"),
        )
        assert stored is not None
        audit_text = await conn.fetchval(
            "SELECT string_agg(to_jsonb(a)::text, '\n') FROM audit_events a"
        )
    finally:
        await conn.close()
    assert stored["token_hash"] == digest
    assert secret not in stored["row"]
    assert "CreateToken" in audit_text
    for leak in (secret, secret.removeprefix("mrt_"), digest.hex(), "token_hash"):
        assert leak not in audit_text


async def test_a_second_token_of_a_principal_keeps_its_role(
    access: AccessServiceAsyncStub, connect: Callable[[str], grpc.aio.Channel]
) -> None:
    await create_token(access, "trainer")
    await access.SetGrant(
        pb.SetGrantRequest(grant=ap.Grant(principal="trainer", role=ap.ROLE_EDITOR))
    )
    second = await create_token(access, "trainer", description="the spare")
    caller = await AccessServiceAsyncStub(connect(second.secret)).GetCaller(pb.GetCallerRequest())
    assert caller.role == ap.ROLE_EDITOR


BAD_CREATES: list[tuple[str, ap.Token, list[str]]] = [
    ("empty-principal", ap.Token(principal=""), ["token.principal"]),
    ("space-in-principal", ap.Token(principal="ci pipeline"), ["token.principal"]),
    ("long-principal", ap.Token(principal="p" * 129), ["token.principal"]),
    ("slash-in-principal", ap.Token(principal="team/ci"), ["token.principal"]),
    ("long-description", ap.Token(principal="ci", description="d" * 1025), ["token.description"]),
    ("past-expiry", ap.Token(principal="ci", expire_time=Timestamp(seconds=1)),
     ["token.expire_time"]),
    ("expiry-out-of-range", ap.Token(principal="ci", expire_time=Timestamp(seconds=2**60)),
     ["token.expire_time"]),
    ("everything-wrong", ap.Token(principal="", description="d" * 2000,
                                  expire_time=Timestamp(seconds=int(time.time()) - 60)),
     ["token.principal", "token.description", "token.expire_time"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("token", "fields"),
    [(token, fields) for _, token, fields in BAD_CREATES],
    ids=[label for label, _, _ in BAD_CREATES],
)
async def test_create_token_refuses_bad_input_and_changes_nothing(
    token: ap.Token, fields: list[str], access: AccessServiceAsyncStub, migrated_database_url: str
) -> None:
    before = await snapshot(migrated_database_url)
    error = await failure(access.CreateToken(pb.CreateTokenRequest(token=token)))
    details = helpers.error_details(error)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.bad_request_fields == fields
    helpers.assert_clean_message(details.message)
    assert await snapshot(migrated_database_url) == before


async def test_list_tokens_pages_newest_first_and_hides_inactive_ones(
    access: AccessServiceAsyncStub, migrated_database_url: str
) -> None:
    made = [await create_token(access, "alpha", description=f"a{i}") for i in range(5)]
    made += [await create_token(access, "beta", description=f"b{i}") for i in range(2)]
    revoked = made[1].token.name
    await access.RevokeToken(pb.RevokeTokenRequest(name=revoked))
    # An expired token can only come from the bootstrap path (the API refuses past expiries).
    await make_token(migrated_database_url, "alpha", Role.VIEWER, expires_in=timedelta(seconds=-1))

    async def every_page(**request: Any) -> tuple[list[ap.Token], int]:
        tokens: list[ap.Token] = []
        page_token, pages = "", 0
        while True:
            page = await access.ListTokens(
                pb.ListTokensRequest(page_size=2, page_token=page_token, **request)
            )
            tokens += page.tokens
            pages += 1
            if not page.next_page_token:
                return tokens, pages
            page_token = page.next_page_token

    live, pages = await every_page()
    newest_first = [m.token.name for m in reversed(made) if m.token.name != revoked]
    assert [t.name for t in live][:-1] == newest_first  # then the fixture's admin token
    assert live[-1].principal == ADMIN
    assert pages == 4
    created = [t.create_time.ToDatetime() for t in live]
    assert created == sorted(created, reverse=True)
    assert all(not t.HasField("revoke_time") for t in live)

    everything, _ = await every_page(show_inactive=True)
    assert len(everything) == len(live) + 2
    inactive = [t for t in everything if t.name not in {x.name for x in live}]
    assert {t.principal for t in inactive} == {"alpha"}
    assert [t.HasField("revoke_time") for t in inactive].count(True) == 1
    assert any(t.expire_time.ToDatetime(UTC) < datetime.now(UTC) for t in inactive)

    betas, _ = await every_page(principal="beta")
    assert [t.description for t in betas] == ["b1", "b0"]
    alphas, _ = await every_page(principal="alpha", show_inactive=True)
    assert len(alphas) == 6
    assert (await access.ListTokens(pb.ListTokensRequest(principal="nobody"))).tokens == []

    # A page token belongs to the request that made it.
    first = await access.ListTokens(pb.ListTokensRequest(page_size=1))
    for wrong in (
        pb.ListTokensRequest(page_token=first.next_page_token, show_inactive=True),
        pb.ListTokensRequest(page_token=first.next_page_token, principal="alpha"),
        pb.ListTokensRequest(page_token=helpers.tamper(first.next_page_token)),
        pb.ListTokensRequest(principal="bad principal"),
        pb.ListTokensRequest(page_size=-1),
    ):
        assert await code_of(access.ListTokens(wrong)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_revoked_token_is_refused_and_cannot_be_revoked_twice(
    access: AccessServiceAsyncStub, connect: Callable[[str], grpc.aio.Channel]
) -> None:
    created = await create_token(access, "short-lived")
    revoked = await access.RevokeToken(pb.RevokeTokenRequest(name=created.token.name))
    assert revoked.name == created.token.name
    assert abs(revoked.revoke_time.ToDatetime(UTC) - datetime.now(UTC)) < timedelta(minutes=1)

    # Never used before it was revoked, so no replica has it cached: refused at once.
    as_revoked = AccessServiceAsyncStub(connect(created.secret))
    assert await code_of(as_revoked.GetCaller(pb.GetCallerRequest())) == (
        grpc.StatusCode.UNAUTHENTICATED
    )

    again = helpers.error_details(
        await failure(access.RevokeToken(pb.RevokeTokenRequest(name=created.token.name)))
    )
    assert again.code == grpc.StatusCode.FAILED_PRECONDITION
    assert again.precondition_subjects == [created.token.name]
    unknown = f"tokens/{uuid.uuid4()}"
    assert await code_of(access.RevokeToken(pb.RevokeTokenRequest(name=unknown))) == (
        grpc.StatusCode.NOT_FOUND
    )
    for bad in ("", "tokens/", "tokens/abc", created.token.name.removeprefix("tokens/")):
        error = helpers.error_details(
            await failure(access.RevokeToken(pb.RevokeTokenRequest(name=bad)))
        )
        assert (error.code, error.bad_request_fields) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            ["name"],
        )


async def test_a_revoked_token_stops_at_once_here_and_within_the_cache_ttl_elsewhere(
    access: AccessServiceAsyncStub,
    connect: Callable[[str], grpc.aio.Channel],
    migrated_database_url: str,
    store_endpoints: StoreEndpoints,
    s3_bucket: str,
) -> None:
    created = await create_token(access, "in-use")
    here = AccessServiceAsyncStub(connect(created.secret))
    await here.GetCaller(pb.GetCallerRequest())  # now cached by this replica
    async with (
        running_server(migrated_database_url, store_endpoints, s3_bucket) as other_target,
        authenticated_channel(other_target, created.secret) as other_channel,
    ):
        elsewhere = AccessServiceAsyncStub(other_channel)
        await elsewhere.GetCaller(pb.GetCallerRequest())  # and by the other one

        await access.RevokeToken(pb.RevokeTokenRequest(name=created.token.name))
        revoked_at = time.monotonic()

        # The replica that revoked it drops its cache with the change.
        assert await code_of(here.GetCaller(pb.GetCallerRequest())) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        while await code_of(elsewhere.GetCaller(pb.GetCallerRequest())) == grpc.StatusCode.OK:
            assert time.monotonic() - revoked_at < CACHE_TTL_S + 2, "still accepted after the TTL"
            await asyncio.sleep(0.2)
        assert await code_of(elsewhere.GetCaller(pb.GetCallerRequest())) == (
            grpc.StatusCode.UNAUTHENTICATED
        )


# -- grants -----------------------------------------------------------------------------------


async def test_an_editor_grant_on_one_model_lets_a_principal_edit_only_that_model(
    access: AccessServiceAsyncStub,
    registry: RegistryServiceAsyncStub,
    connect: Callable[[str], grpc.aio.Channel],
) -> None:
    await seed_models(registry, "x", "y")
    await create_token(access, "team-x")
    held = await access.SetGrant(
        pb.SetGrantRequest(
            grant=ap.Grant(principal="team-x", model="models/x", role=ap.ROLE_EDITOR)
        )
    )
    assert held == ap.Grant(principal="team-x", model="models/x", role=ap.ROLE_EDITOR)

    fresh = await create_token(access, "team-x")  # a token no cache has seen
    as_team = connect(fresh.secret)
    caller = await AccessServiceAsyncStub(as_team).GetCaller(pb.GetCallerRequest())
    assert caller.role == ap.ROLE_VIEWER
    assert list(caller.grants) == [held]
    team = RegistryServiceAsyncStub(as_team)
    made = await team.CreateModelVersion(rpb.CreateModelVersionRequest(parent="models/x"))
    assert made.created_by == "team-x"
    denied = await failure(
        team.CreateModelVersion(rpb.CreateModelVersionRequest(parent="models/y"))
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    # A grant may name a model that does not exist yet.
    await access.SetGrant(
        pb.SetGrantRequest(
            grant=ap.Grant(principal="team-x", model="models/later", role=ap.ROLE_ADMIN)
        )
    )
    listed = await access.ListGrants(pb.ListGrantsRequest(principal="team-x"))
    assert grant_rows(listed.grants) == [
        ("team-x", "", "ROLE_VIEWER"),
        ("team-x", "models/later", "ROLE_ADMIN"),
        ("team-x", "models/x", "ROLE_EDITOR"),
    ]


async def test_an_approver_grant_everywhere_lets_a_principal_promote_any_model(
    access: AccessServiceAsyncStub,
    registry: RegistryServiceAsyncStub,
    connect: Callable[[str], grpc.aio.Channel],
) -> None:
    await seed_models(registry, "x", "y")
    await create_token(access, "release")
    await access.SetGrant(
        pb.SetGrantRequest(grant=ap.Grant(principal="release", role=ap.ROLE_APPROVER))
    )
    fresh = await create_token(access, "release")
    as_release = connect(fresh.secret)
    caller = await AccessServiceAsyncStub(as_release).GetCaller(pb.GetCallerRequest())
    assert (caller.principal, caller.role, list(caller.grants)) == ("release", ap.ROLE_APPROVER, [])
    for model_id in ("x", "y"):
        moved = await RegistryServiceAsyncStub(as_release).TransitionModelVersionStage(
            rpb.TransitionModelVersionStageRequest(
                name=f"models/{model_id}/versions/1", stage=mv.STAGE_PRODUCTION
            )
        )
        assert moved.model_version.stage == mv.STAGE_PRODUCTION
    # Still not an admin: no tokens for it.
    assert await code_of(AccessServiceAsyncStub(as_release).ListTokens(pb.ListTokensRequest())) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


async def test_deleting_grants_takes_roles_away(
    access: AccessServiceAsyncStub,
    registry: RegistryServiceAsyncStub,
    connect: Callable[[str], grpc.aio.Channel],
) -> None:
    await seed_models(registry, "x")
    await create_token(access, "dev")
    for model in ("models/x", ""):
        await access.SetGrant(
            pb.SetGrantRequest(grant=ap.Grant(principal="dev", model=model, role=ap.ROLE_EDITOR))
        )

    await access.DeleteGrant(pb.DeleteGrantRequest(principal="dev", model="models/x"))
    listed = await access.ListGrants(pb.ListGrantsRequest(principal="dev"))
    assert grant_rows(listed.grants) == [("dev", "", "ROLE_EDITOR")]
    again = await failure(
        access.DeleteGrant(pb.DeleteGrantRequest(principal="dev", model="models/x"))
    )
    assert again.code() == grpc.StatusCode.NOT_FOUND
    assert "no grant on models/x" in (again.details() or "")

    await access.DeleteGrant(pb.DeleteGrantRequest(principal="dev"))
    listed = await access.ListGrants(pb.ListGrantsRequest(principal="dev"))
    assert grant_rows(listed.grants) == [("dev", "", "ROLE_VIEWER")]
    # A viewer everywhere has no role there to reset.
    assert await code_of(access.DeleteGrant(pb.DeleteGrantRequest(principal="dev"))) == (
        grpc.StatusCode.NOT_FOUND
    )

    fresh = await create_token(access, "dev")
    as_dev = connect(fresh.secret)
    assert (await AccessServiceAsyncStub(as_dev).GetCaller(pb.GetCallerRequest())) == pb.Caller(
        principal="dev", role=ap.ROLE_VIEWER
    )
    assert await code_of(
        RegistryServiceAsyncStub(as_dev).CreateModelVersion(
            rpb.CreateModelVersionRequest(parent="models/x")
        )
    ) == (grpc.StatusCode.PERMISSION_DENIED)


GrantCall = Callable[[AccessServiceAsyncStub], Awaitable[Any]]
BAD_GRANT_CALLS: list[tuple[str, grpc.StatusCode, list[str], GrantCall]] = [
    ("set/unknown-principal", grpc.StatusCode.NOT_FOUND, [],
     lambda a: a.SetGrant(pb.SetGrantRequest(
         grant=ap.Grant(principal="nobody", role=ap.ROLE_EDITOR)))),
    ("set/unspecified-role", grpc.StatusCode.INVALID_ARGUMENT, ["grant.role"],
     lambda a: a.SetGrant(pb.SetGrantRequest(grant=ap.Grant(principal="someone")))),
    ("set/unknown-role", grpc.StatusCode.INVALID_ARGUMENT, ["grant.role"],
     lambda a: a.SetGrant(pb.SetGrantRequest(
         grant=ap.Grant(principal="someone", role=9)))),  # type: ignore[arg-type]
    ("set/bad-model", grpc.StatusCode.INVALID_ARGUMENT, ["grant.model"],
     lambda a: a.SetGrant(pb.SetGrantRequest(
         grant=ap.Grant(principal="someone", model="x", role=ap.ROLE_EDITOR)))),
    ("set/model-with-version", grpc.StatusCode.INVALID_ARGUMENT, ["grant.model"],
     lambda a: a.SetGrant(pb.SetGrantRequest(
         grant=ap.Grant(principal="someone", model="models/x/versions/1", role=ap.ROLE_EDITOR)))),
    ("set/everything-wrong", grpc.StatusCode.INVALID_ARGUMENT,
     ["grant.principal", "grant.model", "grant.role"],
     lambda a: a.SetGrant(pb.SetGrantRequest(grant=ap.Grant(principal="a b", model="models/X")))),
    ("delete/unknown-principal", grpc.StatusCode.NOT_FOUND, [],
     lambda a: a.DeleteGrant(pb.DeleteGrantRequest(principal="nobody", model="models/x"))),
    ("delete/unknown-principal-everywhere", grpc.StatusCode.NOT_FOUND, [],
     lambda a: a.DeleteGrant(pb.DeleteGrantRequest(principal="nobody"))),
    ("delete/missing-grant", grpc.StatusCode.NOT_FOUND, [],
     lambda a: a.DeleteGrant(pb.DeleteGrantRequest(principal="someone", model="models/y"))),
    ("delete/bad-principal", grpc.StatusCode.INVALID_ARGUMENT, ["principal"],
     lambda a: a.DeleteGrant(pb.DeleteGrantRequest(principal=""))),
    ("delete/bad-model", grpc.StatusCode.INVALID_ARGUMENT, ["model"],
     lambda a: a.DeleteGrant(pb.DeleteGrantRequest(principal="someone", model="models/"))),
    ("list/bad-model", grpc.StatusCode.INVALID_ARGUMENT, ["model"],
     lambda a: a.ListGrants(pb.ListGrantsRequest(model="llama"))),
    ("list/bad-principal", grpc.StatusCode.INVALID_ARGUMENT, ["principal"],
     lambda a: a.ListGrants(pb.ListGrantsRequest(principal="x" * 129))),
    ("list/garbage-token", grpc.StatusCode.INVALID_ARGUMENT, ["page_token"],
     lambda a: a.ListGrants(pb.ListGrantsRequest(page_token="garbage"))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "fields", "call"),
    [(code, fields, call) for _, code, fields, call in BAD_GRANT_CALLS],
    ids=[label for label, _, _, _ in BAD_GRANT_CALLS],
)
async def test_bad_grant_calls_change_nothing(
    code: grpc.StatusCode,
    fields: list[str],
    call: GrantCall,
    access: AccessServiceAsyncStub,
    migrated_database_url: str,
) -> None:
    await create_token(access, "someone")
    await access.SetGrant(
        pb.SetGrantRequest(
            grant=ap.Grant(principal="someone", model="models/x", role=ap.ROLE_EDITOR)
        )
    )
    before = await snapshot(migrated_database_url)
    details = helpers.error_details(await failure(call(access)))
    assert details.code == code
    assert details.bad_request_fields == fields
    helpers.assert_clean_message(details.message)
    assert await snapshot(migrated_database_url) == before


async def test_list_grants_orders_by_principal_then_model_and_pages(
    access: AccessServiceAsyncStub,
) -> None:
    for principal in ("zed", "amy", "Bob", "amy.b"):
        await create_token(access, principal)
    grants = [
        ("zed", "models/m2", ap.ROLE_EDITOR),
        ("amy", "models/m2", ap.ROLE_APPROVER),
        ("amy", "models/m1", ap.ROLE_EDITOR),
        ("amy", "", ap.ROLE_EDITOR),
        ("Bob", "models/m1", ap.ROLE_ADMIN),
    ]
    for principal, model, role in grants:
        await access.SetGrant(
            pb.SetGrantRequest(grant=ap.Grant(principal=principal, model=model, role=role))
        )

    rows: list[tuple[str, str, str]] = []
    page_token = ""
    while True:
        page = await access.ListGrants(pb.ListGrantsRequest(page_size=3, page_token=page_token))
        assert len(page.grants) <= 3
        rows += grant_rows(page.grants)
        page_token = page.next_page_token
        if not page_token:
            break
    assert rows == [  # byte order: upper case before lower case
        ("Bob", "", "ROLE_VIEWER"),
        ("Bob", "models/m1", "ROLE_ADMIN"),
        ("amy", "", "ROLE_EDITOR"),
        ("amy", "models/m1", "ROLE_EDITOR"),
        ("amy", "models/m2", "ROLE_APPROVER"),
        ("amy.b", "", "ROLE_VIEWER"),
        (ADMIN, "", "ROLE_ADMIN"),
        ("zed", "", "ROLE_VIEWER"),
        ("zed", "models/m2", "ROLE_EDITOR"),
    ]

    on_m2 = await access.ListGrants(pb.ListGrantsRequest(model="models/m2"))
    assert grant_rows(on_m2.grants) == [
        ("amy", "models/m2", "ROLE_APPROVER"),
        ("zed", "models/m2", "ROLE_EDITOR"),
    ]
    amy_m1 = await access.ListGrants(pb.ListGrantsRequest(principal="amy", model="models/m1"))
    assert grant_rows(amy_m1.grants) == [("amy", "models/m1", "ROLE_EDITOR")]
    assert (await access.ListGrants(pb.ListGrantsRequest(principal="nobody"))).grants == []

    first = await access.ListGrants(pb.ListGrantsRequest(page_size=1))
    other_request = pb.ListGrantsRequest(principal="amy", page_token=first.next_page_token)
    assert await code_of(access.ListGrants(other_request)) == grpc.StatusCode.INVALID_ARGUMENT


# -- only admins manage access ----------------------------------------------------------------

ADMIN_ONLY: list[tuple[str, Callable[[AccessServiceAsyncStub, str], Awaitable[Any]]]] = [
    ("CreateToken", lambda a, t: a.CreateToken(
        pb.CreateTokenRequest(token=ap.Token(principal="intruder")))),
    ("ListTokens", lambda a, t: a.ListTokens(pb.ListTokensRequest())),
    ("RevokeToken", lambda a, t: a.RevokeToken(pb.RevokeTokenRequest(name=t))),
    ("SetGrant", lambda a, t: a.SetGrant(pb.SetGrantRequest(
        grant=ap.Grant(principal="victim", role=ap.ROLE_ADMIN)))),
    ("SetGrant/model", lambda a, t: a.SetGrant(pb.SetGrantRequest(
        grant=ap.Grant(principal="victim", model="models/x", role=ap.ROLE_ADMIN)))),
    ("DeleteGrant", lambda a, t: a.DeleteGrant(pb.DeleteGrantRequest(principal="victim"))),
    ("DeleteGrant/model", lambda a, t: a.DeleteGrant(
        pb.DeleteGrantRequest(principal="victim", model="models/x"))),
    ("ListGrants", lambda a, t: a.ListGrants(pb.ListGrantsRequest())),
]  # fmt: skip


@pytest.mark.parametrize(
    ("role", "model"),
    [(Role.VIEWER, None), (Role.EDITOR, None), (Role.APPROVER, None), (Role.ADMIN, "x")],
    ids=["viewer", "editor", "approver", "admin-on-one-model"],
)
async def test_only_an_admin_everywhere_manages_access(
    role: Role,
    model: str | None,
    access: AccessServiceAsyncStub,
    connect: Callable[[str], grpc.aio.Channel],
    migrated_database_url: str,
) -> None:
    victim = await create_token(access, "victim")
    await access.SetGrant(
        pb.SetGrantRequest(
            grant=ap.Grant(principal="victim", model="models/x", role=ap.ROLE_EDITOR)
        )
    )
    await access.SetGrant(
        pb.SetGrantRequest(grant=ap.Grant(principal="victim", role=ap.ROLE_EDITOR))
    )
    secret = await make_token(migrated_database_url, "mallory", role, model=model)
    as_mallory = AccessServiceAsyncStub(connect(secret))
    before = await snapshot(migrated_database_url)

    for label, call in ADMIN_ONLY:
        error = await failure(call(as_mallory, victim.token.name))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, label
        assert "needs the admin role" in (error.details() or ""), label

    assert await snapshot(migrated_database_url) == before
    # Anyone may ask who they are.
    caller = await as_mallory.GetCaller(pb.GetCallerRequest())
    assert caller.principal == "mallory"


async def test_every_access_rpc_needs_a_token(registry_target: str) -> None:
    async with grpc.aio.insecure_channel(registry_target) as anonymous:
        stub = AccessServiceAsyncStub(anonymous)
        for label, call in [
            *ADMIN_ONLY,
            ("GetCaller", lambda a, t: a.GetCaller(pb.GetCallerRequest())),
        ]:
            code = await code_of(call(stub, f"tokens/{uuid.uuid4()}"))
            assert code == grpc.StatusCode.UNAUTHENTICATED, label


# -- audit ------------------------------------------------------------------------------------

Md = tuple[tuple[str, str], ...]
Scenario = Callable[[AccessServiceAsyncStub, Md], Awaitable[tuple[str, str, Any, Any]]]


async def audit_create_token(a: AccessServiceAsyncStub, md: Md) -> tuple[str, str, Any, Any]:
    expires = datetime(2100, 1, 2, 3, 4, 5, tzinfo=UTC)
    made = await a.CreateToken(
        pb.CreateTokenRequest(
            token=ap.Token(principal="new-bot", description="for CI", expire_time=ts(expires))
        ),
        metadata=md,
    )
    after = {"principal": "new-bot", "description": "for CI", "expire_time": "2100-01-02T03:04:05Z"}
    return "CreateToken", made.token.name, None, after


async def audit_revoke_token(a: AccessServiceAsyncStub, md: Md) -> tuple[str, str, Any, Any]:
    made = await create_token(a, "old-bot")
    revoked = await a.RevokeToken(pb.RevokeTokenRequest(name=made.token.name), metadata=md)
    before = {"principal": "old-bot", "description": "", "expire_time": None}
    revoke_time = revoked.revoke_time.ToDatetime(UTC).isoformat().replace("+00:00", "Z")
    return "RevokeToken", made.token.name, before, before | {"revoke_time": revoke_time}


async def audit_set_grant_on_model(a: AccessServiceAsyncStub, md: Md) -> tuple[str, str, Any, Any]:
    await create_token(a, "bot")
    grant = ap.Grant(principal="bot", model="models/m", role=ap.ROLE_APPROVER)
    await a.SetGrant(pb.SetGrantRequest(grant=grant), metadata=md)
    return "SetGrant", "principals/bot", None, {"model": "models/m", "role": "approver"}


async def audit_replace_grant_on_model(
    a: AccessServiceAsyncStub, md: Md
) -> tuple[str, str, Any, Any]:
    await create_token(a, "bot")
    await a.SetGrant(
        pb.SetGrantRequest(grant=ap.Grant(principal="bot", model="models/m", role=ap.ROLE_ADMIN))
    )
    grant = ap.Grant(principal="bot", model="models/m", role=ap.ROLE_EDITOR)
    await a.SetGrant(pb.SetGrantRequest(grant=grant), metadata=md)
    before = {"model": "models/m", "role": "admin"}
    return "SetGrant", "principals/bot", before, {"model": "models/m", "role": "editor"}


async def audit_set_grant_everywhere(
    a: AccessServiceAsyncStub, md: Md
) -> tuple[str, str, Any, Any]:
    await create_token(a, "bot")
    grant = ap.Grant(principal="bot", role=ap.ROLE_EDITOR)
    await a.SetGrant(pb.SetGrantRequest(grant=grant), metadata=md)
    return (
        "SetGrant", "principals/bot", {"model": None, "role": "viewer"},
        {"model": None, "role": "editor"},
    )  # fmt: skip


async def audit_delete_grant_on_model(
    a: AccessServiceAsyncStub, md: Md
) -> tuple[str, str, Any, Any]:
    await create_token(a, "bot")
    grant = ap.Grant(principal="bot", model="models/m", role=ap.ROLE_EDITOR)
    await a.SetGrant(pb.SetGrantRequest(grant=grant))
    await a.DeleteGrant(pb.DeleteGrantRequest(principal="bot", model="models/m"), metadata=md)
    return "DeleteGrant", "principals/bot", {"model": "models/m", "role": "editor"}, None


async def audit_delete_grant_everywhere(
    a: AccessServiceAsyncStub, md: Md
) -> tuple[str, str, Any, Any]:
    await create_token(a, "bot")
    await a.SetGrant(pb.SetGrantRequest(grant=ap.Grant(principal="bot", role=ap.ROLE_ADMIN)))
    await a.DeleteGrant(pb.DeleteGrantRequest(principal="bot"), metadata=md)
    return (
        "DeleteGrant", "principals/bot", {"model": None, "role": "admin"},
        {"model": None, "role": "viewer"},
    )  # fmt: skip


SCENARIOS: list[tuple[str, Scenario]] = [
    ("CreateToken", audit_create_token),
    ("RevokeToken", audit_revoke_token),
    ("SetGrant/model", audit_set_grant_on_model),
    ("SetGrant/model-replaced", audit_replace_grant_on_model),
    ("SetGrant/everywhere", audit_set_grant_everywhere),
    ("DeleteGrant/model", audit_delete_grant_on_model),
    ("DeleteGrant/everywhere", audit_delete_grant_everywhere),
]


def test_every_mutating_rpc_has_an_audit_scenario() -> None:
    assert {label.split("/")[0] for label, _ in SCENARIOS} == set(MUTATING_RPCS)
    service = pb.DESCRIPTOR.services_by_name["AccessService"]
    reads = set(service.methods_by_name) - set(MUTATING_RPCS)
    assert reads == {"ListTokens", "ListGrants", "GetCaller"}


@pytest.mark.parametrize("scenario", [s for _, s in SCENARIOS], ids=[lbl for lbl, _ in SCENARIOS])
async def test_a_change_writes_one_audit_event(
    scenario: Scenario, access: AccessServiceAsyncStub, migrated_database_url: str
) -> None:
    request_id = f"req-{uuid.uuid4()}"
    action, resource, before, after = await scenario(access, (("x-request-id", request_id),))

    rows = await helpers.audit_rows(migrated_database_url)
    ours = [r for r in rows if r["request_id"] == request_id]
    assert len(ours) == 1, ours
    row = ours[0]
    assert row is rows[-1]
    assert (row["principal"], row["action"], row["resource"]) == (ADMIN, action, resource)
    assert row["before"] == before
    assert row["after"] == after


async def test_reads_and_failures_write_no_audit_event(
    access: AccessServiceAsyncStub, migrated_database_url: str
) -> None:
    made = await create_token(access, "bot")
    await access.RevokeToken(pb.RevokeTokenRequest(name=made.token.name))
    earlier = await helpers.audit_rows(migrated_database_url)

    await access.ListTokens(pb.ListTokensRequest(show_inactive=True))
    await access.ListGrants(pb.ListGrantsRequest())
    await access.GetCaller(pb.GetCallerRequest())
    failing: list[Awaitable[Any]] = [
        access.RevokeToken(pb.RevokeTokenRequest(name=made.token.name)),
        access.DeleteGrant(pb.DeleteGrantRequest(principal="bot")),
        access.SetGrant(
            pb.SetGrantRequest(grant=ap.Grant(principal="nobody", role=ap.ROLE_VIEWER))
        ),
        access.CreateToken(pb.CreateTokenRequest(token=ap.Token(principal=""))),
    ]
    for call in failing:
        with pytest.raises(grpc.aio.AioRpcError):
            await call
    assert await helpers.audit_rows(migrated_database_url) == earlier


async def test_the_bootstrap_path_audits_as_bootstrap(migrated_database_url: str) -> None:
    secret = await make_token(
        migrated_database_url, "root", Role.ADMIN, audit_as="bootstrap", description="first"
    )
    db = await Database.connect(migrated_database_url, min_size=1, max_size=1)
    try:
        async with db.connection() as conn:
            token_id = await conn.fetchval(
                "SELECT t.id::text FROM tokens t JOIN principals p ON p.id = t.principal_id "
                "WHERE p.name = 'root'"
            )
        assert await revoke_token(db, f"tokens/{token_id}", audit_as="bootstrap")
        assert not await revoke_token(db, token_id, audit_as="bootstrap")  # already revoked
        assert not await revoke_token(db, "not-a-uuid")
    finally:
        await db.close()
    rows = await helpers.audit_rows(migrated_database_url)
    created, revoked = rows[-2:]
    assert (created["principal"], created["action"], created["resource"]) == (
        "bootstrap", "CreateToken", f"tokens/{token_id}",
    )  # fmt: skip
    assert created["after"] == {
        "principal": "root", "description": "first", "expire_time": None,
        "grant": {"model": None, "role": "admin"},
    }  # fmt: skip
    assert (revoked["principal"], revoked["action"]) == ("bootstrap", "RevokeToken")
    assert secret not in json.dumps(rows, default=str)


# -- the server log ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_serving(target: str, token: str) -> None:
    deadline = time.monotonic() + 30
    async with authenticated_channel(target, token) as channel:
        while True:
            try:
                await AccessServiceAsyncStub(channel).GetCaller(pb.GetCallerRequest(), timeout=1)
                return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def test_a_secret_never_reaches_the_server_log(
    migrated_database_url: str, store_endpoints: StoreEndpoints, s3_bucket: str, admin_token: str
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        **s3_env(store_endpoints, s3_bucket),
        "MODELREG_DATABASE_URL": migrated_database_url,
        "MODELREG_LISTEN": f"127.0.0.1:{port}",
        "MODELREG_LOG_FORMAT": "json",
        "MODELREG_LOG_LEVEL": "debug",
    }
    server = await asyncio.create_subprocess_exec(
        MODELREG, "serve", env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    target = f"127.0.0.1:{port}"
    try:
        await _wait_serving(target, admin_token)
        async with authenticated_channel(target, admin_token) as channel:
            admin = AccessServiceAsyncStub(channel)
            made = await create_token(admin, "logged-bot", description="check the log")
            async with authenticated_channel(target, made.secret) as bot_channel:
                bot = AccessServiceAsyncStub(bot_channel)
                await bot.GetCaller(pb.GetCallerRequest())
                assert await code_of(bot.ListTokens(pb.ListTokensRequest())) == (
                    grpc.StatusCode.PERMISSION_DENIED
                )
                await admin.RevokeToken(pb.RevokeTokenRequest(name=made.token.name))
        server.send_signal(signal.SIGTERM)
        _, raw_log = await asyncio.wait_for(server.communicate(), timeout=30)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    log = raw_log.decode()
    calls = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    methods = {c.get("method", "").rsplit("/", 1)[-1] for c in calls if c.get("event") == "rpc"}
    assert {"CreateToken", "GetCaller", "ListTokens", "RevokeToken"} <= methods  # it was logged
    assert any(c.get("principal") == "logged-bot" for c in calls)
    for secret in (made.secret, admin_token):
        assert secret not in log
        assert secret.removeprefix("mrt_") not in log
