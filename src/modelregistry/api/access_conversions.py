"""Protobuf <-> domain conversion for tokens, grants and the caller. Mechanical."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from modelregistry.api.conversions import datetime_from_timestamp, timestamp
from modelregistry.domain.access import Access, Grant, Role, Token
from modelregistry.domain.names import model_name
from modelregistry.domain.validation import Violations
from modelregistry.v1 import access_pb2 as pb
from modelregistry.v1 import access_service_pb2 as spb

_ROLE_TO_PROTO = {
    Role.VIEWER: pb.ROLE_VIEWER,
    Role.EDITOR: pb.ROLE_EDITOR,
    Role.APPROVER: pb.ROLE_APPROVER,
    Role.ADMIN: pb.ROLE_ADMIN,
}
ROLE_FROM_PROTO: dict[int, Role] = {v: k for k, v in _ROLE_TO_PROTO.items()}


def role_to_proto(role: Role) -> pb.Role.ValueType:
    return _ROLE_TO_PROTO[role]


def datetime_from_proto(value: Timestamp, path: str, out: Violations) -> datetime | None:
    """A valid Timestamp as an aware UTC datetime (to the microsecond PostgreSQL keeps)."""
    return datetime_from_timestamp(value, path, out)


def token_to_proto(token: Token) -> pb.Token:
    message = pb.Token(
        name=token.name,
        principal=token.principal,
        description=token.description,
        create_time=timestamp(token.create_time),
    )
    if token.expire_time is not None:
        message.expire_time.CopyFrom(timestamp(token.expire_time))
    if token.revoke_time is not None:
        message.revoke_time.CopyFrom(timestamp(token.revoke_time))
    return message


def grant_to_proto(grant: Grant) -> pb.Grant:
    return pb.Grant(
        principal=grant.principal,
        model=model_name(grant.model) if grant.model is not None else "",
        role=_ROLE_TO_PROTO[grant.role],
    )


def caller_to_proto(access: Access) -> spb.Caller:
    return spb.Caller(
        principal=access.principal,
        role=_ROLE_TO_PROTO[access.role],
        grants=[
            grant_to_proto(Grant(access.principal, model, role))
            for model, role in sorted(access.grants.items())
        ],
    )
