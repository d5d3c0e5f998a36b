"""The error edge: domain errors keep their code and details; bugs leak nothing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelregistry.api.interceptor import EdgeInterceptor
from modelregistry.domain.access import Access, Role
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    Unavailable,
)

_FAILURES: dict[str, Exception] = {
    "bug": RuntimeError("password=hunter2 at /srv/app.py line 3"),
    "missing": NotFound("model 'x' not found", reason=ErrorReason.MODEL_NOT_FOUND),
    "bad": InvalidArgument.for_field("model.labels", "too many labels"),
    "blocked": FailedPrecondition(
        "models/x/versions/2 is in PRODUCTION",
        reason=ErrorReason.VERSION_IN_PRODUCTION,
        violations=[PreconditionViolation("STAGE", "models/x/versions/2", "in PRODUCTION")],
    ),
    "down": Unavailable("PostgreSQL is unreachable; retry with backoff"),
    # Whatever an error holds, its trailers stay small (a client's metadata limit is 8 KiB).
    "huge-invalid": InvalidArgument.for_fields(
        [FieldViolation(f"labels['{'é' * 20_000}{i}']", "x" * 20_000) for i in range(50)]
    ),
    "huge-precondition": FailedPrecondition(
        "ü" * 20_000,
        reason="R" * 5_000,
        metadata={f"k{i}" * 500: "v" * 5_000 for i in range(20)},
        violations=[PreconditionViolation("T" * 9_000, "S" * 9_000, "D" * 9_000)] * 40,
    ),
}


async def _anyone(token: str | None) -> Access:
    return Access(principal="tester", role=Role.ADMIN)


async def _fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise _FAILURES[request.decode()]


@pytest.fixture
async def stub() -> AsyncIterator[grpc.aio.UnaryUnaryMultiCallable]:
    server = grpc.aio.server(interceptors=[EdgeInterceptor(_anyone)])
    handler = grpc.method_handlers_generic_handler(
        "test.Svc", {"Fail": grpc.unary_unary_rpc_method_handler(_fail)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary("/test.Svc/Fail")
    await server.stop(None)


async def _call(stub: grpc.aio.UnaryUnaryMultiCallable, which: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub(which.encode(), metadata=[("x-request-id", "rid-7")])
    return caught.value


def _details(error: grpc.aio.AioRpcError) -> list[object]:
    status = rpc_status.from_call(error)
    assert status is not None
    unpacked: list[object] = []
    for any_detail in status.details:
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
        ):
            if any_detail.Is(cls.DESCRIPTOR):
                message = cls()
                any_detail.Unpack(message)
                unpacked.append(message)
    return unpacked


async def test_a_bug_is_internal_with_a_request_id_and_no_internals(
    stub: grpc.aio.UnaryUnaryMultiCallable,
) -> None:
    error = await _call(stub, "bug")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "rid-7" in (error.details() or "")
    assert "hunter2" not in (error.details() or "")
    assert "RuntimeError" not in (error.details() or "")
    assert "hunter2" not in str(error.debug_error_string())


@pytest.mark.parametrize(
    ("which", "code", "detail_type"),
    [
        ("missing", grpc.StatusCode.NOT_FOUND, None),
        ("bad", grpc.StatusCode.INVALID_ARGUMENT, error_details_pb2.BadRequest),
        ("blocked", grpc.StatusCode.FAILED_PRECONDITION, error_details_pb2.PreconditionFailure),
        ("down", grpc.StatusCode.UNAVAILABLE, None),
    ],
)
async def test_domain_errors_keep_code_message_and_details(
    stub: grpc.aio.UnaryUnaryMultiCallable,
    which: str,
    code: grpc.StatusCode,
    detail_type: type | None,
) -> None:
    error = await _call(stub, which)
    assert error.code() == code
    assert error.details() == str(_FAILURES[which])
    details = _details(error)
    info = next(d for d in details if isinstance(d, error_details_pb2.ErrorInfo))
    assert info.domain == "modelregistry"
    assert info.metadata["request_id"] == "rid-7"
    if detail_type is not None:
        assert any(isinstance(d, detail_type) for d in details)
    if which == "bad":
        bad_request = next(d for d in details if isinstance(d, error_details_pb2.BadRequest))
        assert bad_request.field_violations[0].field == "model.labels"


def _trailer_bytes(error: grpc.aio.AioRpcError) -> int:
    """The trailers as sent: grpc-message percent-encoded, binary values base64-encoded."""
    message = (error.details() or "").encode()
    size = len("grpc-status") + 2 + len("grpc-message")
    size += sum(3 if b < 0x20 or b > 0x7E or b == 0x25 else 1 for b in message)
    for key, value in error.trailing_metadata() or ():
        raw = value if isinstance(value, bytes) else value.encode()
        size += len(key) + (len(base64.b64encode(raw)) if key.endswith("-bin") else len(raw))
    return size


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("huge-invalid", grpc.StatusCode.INVALID_ARGUMENT),
        ("huge-precondition", grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
async def test_every_error_fits_in_4_kib_of_trailers_and_keeps_its_code(
    stub: grpc.aio.UnaryUnaryMultiCallable, which: str, code: grpc.StatusCode
) -> None:
    error = await _call(stub, which)
    assert error.code() == code  # not RESOURCE_EXHAUSTED from the client's metadata limit
    assert _trailer_bytes(error) < 4096
    message = error.details() or ""
    assert message.endswith("…")
    assert message[:40] == str(_FAILURES[which])[:40]  # a prefix of what was wrong
    info = next(d for d in _details(error) if isinstance(d, error_details_pb2.ErrorInfo))
    assert info.metadata["request_id"] == "rid-7"
