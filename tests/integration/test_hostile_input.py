"""What a black-box client found (issue 9): input that reached INTERNAL or UNKNOWN, values echoed
whole into oversized trailers, timestamps at the edge of their range, and page tokens that are
not page tokens. Each test fails without its fix; test_fuzz.py keeps the whole class found.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import pytest
from google.api import field_behavior_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from integration import helpers

from modelregistry.v1 import (
    access_pb2,
    access_service_pb2,
    access_service_pb2_grpc,
    artifact_service_pb2,
    artifact_service_pb2_grpc,
    audit_pb2,
    audit_service_pb2,
    audit_service_pb2_grpc,
    collaboration_pb2,
    collaboration_service_pb2,
    collaboration_service_pb2_grpc,
    model_pb2,
    model_version_pb2,
    registry_service_pb2_grpc,
)
from modelregistry.v1 import registry_service_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MAX_TRAILER_BYTES = 4096
# The last instants google.protobuf.Timestamp and PostgreSQL (microseconds) can hold.
LAST_NANOSECOND = Timestamp(seconds=253_402_300_799, nanos=999_999_999)
LAST_MICROSECOND = Timestamp(seconds=253_402_300_799, nanos=999_999_000)


async def refusal(call: Any) -> helpers.ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = helpers.error_details(caught.value)
    helpers.assert_clean_message(error.message)
    return error


@pytest.fixture
async def seeded(registry: registry_service_pb2_grpc.RegistryServiceStub) -> None:
    await registry.CreateModel(
        pb.CreateModelRequest(model_id="alpha", model=model_pb2.Model(labels={"team": "ml"}))
    )
    await helpers.create_version(registry, metrics={"accuracy": 0.9})


# -- 1. NUL anywhere ----------------------------------------------------------------------------

NUL_FILTERS = ['name = "a\x00b"', "name = a\x00b", 'labels.a\x00 = "x"', "\x00"]


@pytest.mark.parametrize("text", NUL_FILTERS, ids=["quoted", "bare-word", "map-key", "alone"])
async def test_nul_in_a_filter_is_invalid_argument_on_filter(
    registry: registry_service_pb2_grpc.RegistryServiceStub, seeded: None, text: str
) -> None:
    for call in (
        registry.ListModels(pb.ListModelsRequest(filter=text)),
        registry.ListModelVersions(pb.ListModelVersionsRequest(parent="models/-", filter=text)),
    ):
        error = await refusal(call)
        assert error.code == INVALID, error.message
        assert error.bad_request_fields == ["filter"]
        assert "NUL" in error.message


async def test_nul_in_order_by_is_invalid_argument_on_order_by(
    registry: registry_service_pb2_grpc.RegistryServiceStub, seeded: None
) -> None:
    for call in (
        registry.ListModels(pb.ListModelsRequest(order_by="name\x00")),
        registry.ListModelVersions(
            pb.ListModelVersionsRequest(parent="models/alpha", order_by="metrics.a\x00 desc")
        ),
    ):
        error = await refusal(call)
        assert error.code == INVALID, error.message
        assert error.bad_request_fields == ["order_by"]


async def test_nul_in_any_string_that_reaches_postgresql_is_invalid_argument(
    channel: grpc.aio.Channel, seeded: None, migrated_database_url: str
) -> None:
    registry = registry_service_pb2_grpc.RegistryServiceStub(channel)
    collaboration = collaboration_service_pb2_grpc.CollaborationServiceStub(channel)
    access = access_service_pb2_grpc.AccessServiceStub(channel)
    audit = audit_service_pb2_grpc.AuditServiceStub(channel)
    version = "models/alpha/versions/1"
    cases: list[tuple[Any, str]] = [
        (registry.GetModel(pb.GetModelRequest(name="models/al\x00pha")), "name"),
        (
            registry.CreateModel(
                pb.CreateModelRequest(
                    model_id="gamma", model=model_pb2.Model(labels={"a\x00": "x"})
                )
            ),
            "model.labels",
        ),
        (
            registry.CreateModel(
                pb.CreateModelRequest(model_id="gamma", model=model_pb2.Model(owner="o\x00"))
            ),
            "model.owner",
        ),
        (
            registry.CreateModelVersion(
                pb.CreateModelVersionRequest(
                    parent="models/alpha",
                    model_version=model_version_pb2.ModelVersion(
                        lineage=model_version_pb2.Lineage(
                            training_datasets=[model_version_pb2.DatasetReference(name="d\x00")]
                        )
                    ),
                )
            ),
            "model_version.lineage.training_datasets[0].name",
        ),
        (
            registry.CreateModelVersion(
                pb.CreateModelVersionRequest(parent="models/alpha", request_id="r\x00")
            ),
            "request_id",
        ),
        (
            collaboration.CreateComment(
                collaboration_service_pb2.CreateCommentRequest(
                    parent=version, comment=collaboration_pb2.Comment(body="hello\x00")
                )
            ),
            "comment.body",
        ),
        (
            access.CreateToken(
                access_service_pb2.CreateTokenRequest(
                    token=access_pb2.Token(principal="ci", description="x\x00")
                )
            ),
            "token.description",
        ),
        (
            audit.ListAuditEvents(
                audit_service_pb2.ListAuditEventsRequest(
                    filter=audit_pb2.AuditEventFilter(actions=["CreateModel", "X\x00"])
                )
            ),
            "filter.actions[1]",
        ),
    ]
    before = await helpers.snapshot(migrated_database_url)
    for call, field in cases:
        error = await refusal(call)
        assert error.code == INVALID, (field, error.message)
        assert error.bad_request_fields == [field], error.message
    assert await helpers.snapshot(migrated_database_url) == before


# -- 2. Write checks upload_id --------------------------------------------------------------------


@pytest.mark.parametrize("upload_id", ["not-a-uuid", ""])
async def test_write_with_an_upload_id_that_is_not_a_uuid_is_invalid_argument(
    channel: grpc.aio.Channel, upload_id: str
) -> None:
    artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)

    async def requests() -> AsyncIterator[artifact_service_pb2.WriteRequest]:
        yield artifact_service_pb2.WriteRequest(upload_id=upload_id, data=b"x", finish=True)

    error = await refusal(artifacts.Write(requests()))
    assert error.code == INVALID, error.message
    assert error.bad_request_fields == ["upload_id"]


# -- 3. malformed request bytes -------------------------------------------------------------------

MALFORMED = {
    "not-protobuf": b"\xff\xff\xff\xff",
    "truncated": pb.GetModelRequest(name="models/alpha").SerializeToString()[:-3],
    "invalid-utf8": b"\x0a\x03a\xffb",  # field 1 (name), 3 bytes, not UTF-8
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_request_bytes_are_invalid_argument_without_class_names(
    channel: grpc.aio.Channel, payload: bytes
) -> None:
    unary = channel.unary_unary("/modelregistry.v1.RegistryService/GetModel")
    error = await refusal(unary(payload))
    assert error.code == INVALID, error.message
    assert "GetModelRequest" in error.message
    assert "DecodeError" not in error.message
    assert "<class" not in error.message

    write = channel.stream_unary("/modelregistry.v1.ArtifactService/Write")
    error = await refusal(write(iter([payload])))
    assert error.code == INVALID, error.message


# -- 4. timestamps at the edge of their range -----------------------------------------------------


async def test_audit_bounds_at_the_last_nanosecond_are_answered(
    channel: grpc.aio.Channel, seeded: None
) -> None:
    audit = audit_service_pb2_grpc.AuditServiceStub(channel)
    until_the_end = await audit.ListAuditEvents(
        audit_service_pb2.ListAuditEventsRequest(
            filter=audit_pb2.AuditEventFilter(end_time=LAST_NANOSECOND)
        )
    )
    assert len(until_the_end.audit_events) == 2  # CreateModel and CreateModelVersion
    after_the_end = await audit.ListAuditEvents(
        audit_service_pb2.ListAuditEventsRequest(
            filter=audit_pb2.AuditEventFilter(start_time=LAST_NANOSECOND)
        )
    )
    assert list(after_the_end.audit_events) == []

    watch = audit.WatchEvents(
        audit_service_pb2.WatchEventsRequest(
            filter=audit_pb2.AuditEventFilter(end_time=LAST_NANOSECOND)
        )
    )
    first = await asyncio.wait_for(watch.read(), timeout=10)
    assert isinstance(first, audit_pb2.AuditEvent), first
    watch.cancel()
    watch = audit.WatchEvents(
        audit_service_pb2.WatchEventsRequest(
            filter=audit_pb2.AuditEventFilter(start_time=LAST_NANOSECOND)
        )
    )
    with pytest.raises(TimeoutError):  # nothing to send yet, and no error either
        await asyncio.wait_for(asyncio.shield(watch.read()), timeout=1)
    watch.cancel()


async def test_a_token_expiring_at_the_last_microsecond_is_created_and_read_back(
    channel: grpc.aio.Channel, migrated_database_url: str
) -> None:
    access = access_service_pb2_grpc.AccessServiceStub(channel)
    created = await access.CreateToken(
        access_service_pb2.CreateTokenRequest(
            token=access_pb2.Token(principal="forever", expire_time=LAST_MICROSECOND)
        )
    )
    assert created.secret
    assert created.token.expire_time == LAST_MICROSECOND
    listed = await access.ListTokens(access_service_pb2.ListTokensRequest(principal="forever"))
    assert [t.expire_time for t in listed.tokens] == [LAST_MICROSECOND]


async def test_a_stored_infinite_expiry_reads_back(
    channel: grpc.aio.Channel, migrated_database_url: str
) -> None:
    # A database written before the fix (or by hand) may hold `infinity`: ListTokens must
    # still page through it.
    access = access_service_pb2_grpc.AccessServiceStub(channel)
    created = await access.CreateToken(
        access_service_pb2.CreateTokenRequest(token=access_pb2.Token(principal="forever"))
    )
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await conn.execute(
            "UPDATE tokens SET expire_time = 'infinity' WHERE id = $1::uuid",
            created.token.name.removeprefix("tokens/"),
        )
    finally:
        await conn.close()
    listed = await access.ListTokens(access_service_pb2.ListTokensRequest(principal="forever"))
    assert [t.expire_time.ToDatetime(tzinfo=UTC) for t in listed.tokens] == [
        datetime.max.replace(tzinfo=UTC)
    ]


# -- 5. long values are echoed as a prefix, trailers stay small ------------------------------------


def trailer_bytes(error: grpc.aio.AioRpcError) -> int:
    """The trailers as sent: grpc-message percent-encoded, binary values base64-encoded."""
    message = (error.details() or "").encode()
    size = len("grpc-status") + 2 + len("grpc-message")
    size += sum(3 if b < 0x20 or b > 0x7E or b == 0x25 else 1 for b in message)
    for key, value in error.trailing_metadata() or ():
        raw = value if isinstance(value, bytes) else value.encode()
        size += len(key) + (len(base64.b64encode(raw)) if key.endswith("-bin") else len(raw))
    return size


@pytest.mark.parametrize("length", [5_000, 20_000])
async def test_a_long_invalid_value_is_echoed_as_a_prefix(
    registry: registry_service_pb2_grpc.RegistryServiceStub, length: int
) -> None:
    huge = "é" * length
    calls = [
        registry.GetModel(pb.GetModelRequest(name=huge)),
        registry.CreateModel(pb.CreateModelRequest(model_id=huge)),
        registry.ListModels(pb.ListModelsRequest(order_by=huge[:1000])),
        registry.CreateModel(
            pb.CreateModelRequest(
                model_id="gamma",
                model=model_pb2.Model(labels={huge[:200] + str(i): "x" for i in range(60)}),
            )
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = caught.value
        assert error.code() == INVALID, error.details()  # not RESOURCE_EXHAUSTED
        assert trailer_bytes(error) < MAX_TRAILER_BYTES
        assert (error.details() or "").count("é") <= 200


# -- 12. the contract says what the code does ------------------------------------------------------


async def test_creates_without_content_are_optional_in_the_contract_and_accepted(
    registry: registry_service_pb2_grpc.RegistryServiceStub,
) -> None:
    for request_type, field in (
        (pb.CreateModelRequest, "model"),
        (pb.CreateModelVersionRequest, "model_version"),
    ):
        options = request_type.DESCRIPTOR.fields_by_name[field].GetOptions()
        behaviors = options.Extensions[field_behavior_pb2.field_behavior]
        assert list(behaviors) == [field_behavior_pb2.OPTIONAL], request_type.__name__
    model = await registry.CreateModel(pb.CreateModelRequest(model_id="bare"))
    assert (model.description, model.owner, dict(model.labels)) == ("", "", {})
    version = await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent=model.name))
    assert version.name == "models/bare/versions/1"
    assert version.description == ""
    assert not version.metrics


# -- 13. a garbage page token is named as such ----------------------------------------------------


async def test_a_garbage_page_token_is_not_a_page_token_of_this_list(
    registry: registry_service_pb2_grpc.RegistryServiceStub,
) -> None:
    for model_id in ("a", "b"):
        await registry.CreateModel(pb.CreateModelRequest(model_id=model_id))
    for garbage in ("not a token!", "garbage", "%%%", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        error = await refusal(registry.ListModels(pb.ListModelsRequest(page_token=garbage)))
        assert error.code == INVALID
        assert "is not a page token of this list" in error.message, error.message
        assert "does not match" not in error.message

    first = await registry.ListModels(pb.ListModelsRequest(page_size=1))
    error = await refusal(
        registry.ListModels(
            pb.ListModelsRequest(page_token=first.next_page_token, filter='name = "b"')
        )
    )
    assert "does not match this request" in error.message, error.message
