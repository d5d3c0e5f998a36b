"""The request guard: every RPC's request is a well-formed message without NUL in its text."""

from __future__ import annotations

import pytest

from modelregistry.api.request_guard import RefusedRequest, guarded_deserializer, nul_field_path
from modelregistry.domain.errors import InvalidArgument
from modelregistry.v1 import artifact_service_pb2, audit_pb2, audit_service_pb2
from modelregistry.v1 import model_version_pb2 as mv
from modelregistry.v1 import registry_service_pb2 as pb

NUL_CASES = [
    (pb.ListModelsRequest(filter='labels.a\x00 = "x"'), "filter"),
    (pb.ListModelVersionsRequest(order_by="metrics.a\x00"), "order_by"),
    (
        pb.CreateModelVersionRequest(model_version=mv.ModelVersion(labels={"k": "v\x00"})),
        "model_version.labels['k']",
    ),
    # A key holding NUL is named by its map: echoing it would carry the NUL along.
    (pb.CreateModelVersionRequest(model_version=mv.ModelVersion(labels={"k\x00": "v"})),
     "model_version.labels"),
    (
        pb.CreateModelVersionRequest(
            model_version=mv.ModelVersion(
                lineage=mv.Lineage(
                    training_datasets=[mv.DatasetReference(), mv.DatasetReference(uri="\x00")]
                )
            )
        ),
        "model_version.lineage.training_datasets[1].uri",
    ),
    (pb.CompareModelVersionsRequest(names=["a", "b\x00"]), "names[1]"),
    (
        audit_service_pb2.ListAuditEventsRequest(
            filter=audit_pb2.AuditEventFilter(actions=["CreateModel", "\x00"])
        ),
        "filter.actions[1]",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("request_message", "path"), NUL_CASES)
def test_nul_in_any_string_is_found_with_its_path(request_message: object, path: str) -> None:
    deserialize = guarded_deserializer(type(request_message).FromString)  # type: ignore[attr-defined]
    assert deserialize is not None
    refused = deserialize(request_message.SerializeToString())  # type: ignore[attr-defined]
    assert isinstance(refused, RefusedRequest)
    assert [v.field for v in refused.error.violations] == [path]


def test_bytes_may_hold_anything() -> None:
    write = artifact_service_pb2.WriteRequest(upload_id="u", data=b"\x00" * 1024)
    assert nul_field_path(write) is None


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xc3\x28"],
    ids=["not-protobuf", "truncated", "invalid-utf8"],
)
def test_bytes_that_are_no_request_are_refused_without_python_names(payload: bytes) -> None:
    deserialize = guarded_deserializer(pb.GetModelRequest.FromString)
    assert deserialize is not None
    refused = deserialize(payload)
    assert isinstance(refused, RefusedRequest)
    assert isinstance(refused.error, InvalidArgument)
    assert "modelregistry.v1.GetModelRequest" in refused.error.message
    assert "Error" not in refused.error.message
    assert "<class" not in refused.error.message


def test_a_good_request_passes_unchanged() -> None:
    deserialize = guarded_deserializer(pb.GetModelRequest.FromString)
    assert deserialize is not None
    assert deserialize(pb.GetModelRequest(name="models/a").SerializeToString()) == (
        pb.GetModelRequest(name="models/a")
    )
