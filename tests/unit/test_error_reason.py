"""The error reasons clients may match on are exactly the ones the contract documents."""

from __future__ import annotations

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.v1 import error_reason_pb2


def test_the_python_enum_and_the_proto_enum_name_the_same_reasons_in_the_same_order() -> None:
    proto_names = [
        value.name
        for value in error_reason_pb2.DESCRIPTOR.enum_types_by_name["ErrorReason"].values
        if value.number != 0
    ]
    assert [reason.name for reason in ErrorReason] == proto_names


def test_every_reason_is_sent_as_its_own_name() -> None:
    assert all(reason.value == reason.name for reason in ErrorReason)


def test_the_zero_value_is_never_a_reason() -> None:
    assert "ERROR_REASON_UNSPECIFIED" not in ErrorReason.__members__
