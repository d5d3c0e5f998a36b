"""The one error edge: domain errors become canonical codes with google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelregistry.domain import errors as de
from modelregistry.domain.error_reason import ErrorReason

ERROR_DOMAIN = "modelregistry"

# Every error's trailers stay under 4 KiB, far below a client's metadata limit (8 KiB by default;
# a long value echoed whole once made clients see RESOURCE_EXHAUSTED instead of the error). The
# message travels twice: percent-encoded in grpc-message (up to 3 bytes per byte) and inside the
# google.rpc.Status that grpc-status-details-bin carries base64-encoded (4 bytes per 3):
# 3 * 400 + 4/3 * 1800 = 3600 bytes, plus the header names.
MAX_TRAILER_BYTES = 4096
MAX_MESSAGE_BYTES = 400
MAX_STATUS_BYTES = 1800
_MAX_FIELD_BYTES = 160
_MAX_DESCRIPTION_BYTES = 240
_MAX_METADATA_BYTES = 160
_MAX_METADATA_ENTRIES = 8
_MAX_VIOLATIONS = 50
_ELLIPSIS = "…"

_CODES: dict[type[de.RegistryError], grpc.StatusCode] = {
    de.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    de.NotFound: grpc.StatusCode.NOT_FOUND,
    de.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    de.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    de.Aborted: grpc.StatusCode.ABORTED,
    de.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    de.DataLoss: grpc.StatusCode.DATA_LOSS,
    de.Unavailable: grpc.StatusCode.UNAVAILABLE,
    de.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    de.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    de.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}


def status_code_of(error: de.RegistryError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def to_grpc_status(error: de.RegistryError, request_id: str) -> grpc.Status:
    """The status for `error`, every part clipped so that the trailers stay small whatever
    the error holds (see MAX_TRAILER_BYTES)."""
    code = status_code_of(error)
    message = clip(error.message, MAX_MESSAGE_BYTES)
    metadata = {
        clip(key, _MAX_METADATA_BYTES): clip(value, _MAX_METADATA_BYTES)
        for key, value in list(error.metadata.items())[:_MAX_METADATA_ENTRIES]
    }
    info = error_details_pb2.ErrorInfo(
        reason=clip(error.reason, _MAX_METADATA_BYTES),
        domain=ERROR_DOMAIN,
        metadata={**metadata, "request_id": request_id},
    )
    bad_request = error_details_pb2.BadRequest()
    if isinstance(error, de.InvalidArgument):
        for v in error.violations[:_MAX_VIOLATIONS]:
            bad_request.field_violations.add(
                field=clip(v.field, _MAX_FIELD_BYTES),
                description=clip(v.description, _MAX_DESCRIPTION_BYTES),
            )
    failure = error_details_pb2.PreconditionFailure()
    if isinstance(error, de.FailedPrecondition):
        for p in error.violations[:_MAX_VIOLATIONS]:
            failure.violations.add(
                type=clip(p.type, _MAX_FIELD_BYTES),
                subject=clip(p.subject, _MAX_FIELD_BYTES),
                description=clip(p.description, _MAX_DESCRIPTION_BYTES),
            )
    proto = _status_proto(code, message, [info, bad_request, failure])
    while proto.ByteSize() > MAX_STATUS_BYTES and (
        bad_request.field_violations or failure.violations
    ):
        # Many long violations: the last ones go (the message names the first ones anyway).
        del (bad_request.field_violations or failure.violations)[-1]
        proto = _status_proto(code, message, [info, bad_request, failure])
    if proto.ByteSize() > MAX_STATUS_BYTES:
        info.metadata.clear()  # many long metadata entries: only the request id stays
        info.metadata["request_id"] = request_id
        proto = _status_proto(code, message, [info])
    return rpc_status.to_status(proto)


def clip(text: str, max_bytes: int) -> str:
    """`text` if its UTF-8 is at most `max_bytes` long, else its longest prefix that fits
    with an ellipsis after it."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    room = max_bytes - len(_ELLIPSIS.encode())
    return data[:room].decode("utf-8", "ignore") + _ELLIPSIS


def internal_status(request_id: str) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason=ErrorReason.INTERNAL, domain=ERROR_DOMAIN, metadata={"request_id": request_id}
    )
    message = f"internal error; report request id {request_id} to the registry's operators"
    return rpc_status.to_status(_status_proto(grpc.StatusCode.INTERNAL, message, [info]))


def _status_proto(code: grpc.StatusCode, message: str, details: list[object]) -> status_pb2.Status:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)  # type: ignore[arg-type]
        packed.append(any_detail)
    return status_pb2.Status(code=code.value[0], message=message, details=packed)
