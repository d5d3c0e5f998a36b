"""The one error edge: domain errors become canonical codes with google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelregistry.domain import errors as de
from modelregistry.domain.error_reason import ErrorReason

ERROR_DOMAIN = "modelregistry"

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
    code = status_code_of(error)
    details = [
        error_details_pb2.ErrorInfo(
            reason=error.reason,
            domain=ERROR_DOMAIN,
            metadata={**error.metadata, "request_id": request_id},
        )
    ]
    if isinstance(error, de.InvalidArgument) and error.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    if isinstance(error, de.FailedPrecondition) and error.violations:
        details.append(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=v.type, subject=v.subject, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    return _status(code, error.message, details)


def internal_status(request_id: str) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason=ErrorReason.INTERNAL, domain=ERROR_DOMAIN, metadata={"request_id": request_id}
    )
    message = f"internal error; report request id {request_id} to the registry's operators"
    return _status(grpc.StatusCode.INTERNAL, message, [info])


def _status(code: grpc.StatusCode, message: str, details: list[object]) -> grpc.Status:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)  # type: ignore[arg-type]
        packed.append(any_detail)
    proto = status_pb2.Status(code=code.value[0], message=message, details=packed)
    return rpc_status.to_status(proto)
