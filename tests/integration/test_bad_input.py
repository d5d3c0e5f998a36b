"""Every way a caller can get a request wrong, for every RPC: the right status code, an
actionable message, the documented error details, and no change to anything stored.

One table drives one test. Each case builds its request from a freshly seeded world (see
`helpers.seed_world`) so stale etags and page tokens are real ones, not made up.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message
from integration import helpers
from integration.helpers import (
    ALIAS,
    ARCHIVED,
    DEVELOPMENT,
    EMPTY_MODEL,
    MODEL,
    PRODUCTION,
    STAGING,
    World,
    tamper,
)
from support.stores import StoreEndpoints

from modelregistry.v1 import model_pb2, model_version_pb2
from modelregistry.v1 import registry_service_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ABORTED = grpc.StatusCode.ABORTED

MV = model_version_pb2
PARENT = f"models/{MODEL}"
TOO_LONG_DESCRIPTION = "é" * 4097  # 4,097 characters but 8,194 bytes: the limit is in bytes
SCHEMA_TEXT = MV.SchemaField(name="text", dtype=MV.DATA_TYPE_STRING, shape=[-1])


@dataclass(frozen=True)
class Case:
    id: str
    rpc: str
    request: Callable[[World], Message]
    code: grpc.StatusCode
    # For INVALID_ARGUMENT: the field the BadRequest detail must name.
    field: str | None = None
    # For FAILED_PRECONDITION with a PreconditionFailure: the resource it must name.
    subject: str | None = None


# -- request builders ---------------------------------------------------------------------------


def create_model(
    model_id: str = "gamma", request_id: str = "", **fields: Any
) -> Callable[..., Any]:
    return lambda w: pb.CreateModelRequest(
        model_id=model_id, model=model_pb2.Model(**fields), request_id=request_id
    )


def update_model(paths: list[str], name: str = PARENT, **fields: Any) -> Callable[..., Any]:
    return lambda w: pb.UpdateModelRequest(
        model=model_pb2.Model(name=name, **fields), update_mask={"paths": paths}
    )


def create_version(parent: str = PARENT, request_id: str = "", **fields: Any) -> Callable[..., Any]:
    return lambda w: pb.CreateModelVersionRequest(
        parent=parent, model_version=MV.ModelVersion(**fields), request_id=request_id
    )


def update_version(paths: list[str], name: str = DEVELOPMENT, **fields: Any) -> Callable[..., Any]:
    return lambda w: pb.UpdateModelVersionRequest(
        model_version=MV.ModelVersion(name=name, **fields), update_mask={"paths": paths}
    )


def get_model(name: str) -> Callable[..., Any]:
    return lambda w: pb.GetModelRequest(name=name)


def get_version(name: str) -> Callable[..., Any]:
    return lambda w: pb.GetModelVersionRequest(name=name)


def list_models(**fields: Any) -> Callable[..., Any]:
    return lambda w: pb.ListModelsRequest(**fields)


def list_versions(parent: str = PARENT, **fields: Any) -> Callable[..., Any]:
    return lambda w: pb.ListModelVersionsRequest(parent=parent, **fields)


def move(name: str, stage: int, **fields: Any) -> Callable[..., Any]:
    return lambda w: pb.TransitionModelVersionStageRequest(name=name, stage=stage, **fields)


def set_alias(name: str, alias: str) -> Callable[..., Any]:
    return lambda w: pb.SetModelVersionAliasRequest(name=name, alias=alias)


def compare(*names: str) -> Callable[..., Any]:
    return lambda w: pb.CompareModelVersionsRequest(names=list(names))


def schema(*fields: MV.SchemaField) -> MV.Schema:
    return MV.Schema(fields=list(fields))


def many(count: int, value: Any = "x") -> dict[str, Any]:
    return {f"k{i}": value for i in range(count)}


# -- the table ----------------------------------------------------------------------------------

MODEL_ID_CASES = [
    Case(
        f"CreateModel/model_id/{label}", "CreateModel", create_model(model_id), INVALID, "model_id"
    )
    for label, model_id in [
        ("empty", ""),
        ("uppercase", "Gamma"),
        ("space", "gam ma"),
        ("slash", "gam/ma"),
        ("leading-dash", "-gamma"),
        ("trailing-dot", "gamma."),
        ("too-long", "g" * 64),
        ("non-ascii", "gämma"),
    ]
]

MODEL_NAME_CASES = [
    Case(f"GetModel/name/{label}", "GetModel", get_model(name), INVALID, "name")
    for label, name in [
        ("empty", ""),
        ("no-prefix", MODEL),
        ("wrong-prefix", f"model/{MODEL}"),
        ("wrong-collection", f"projects/{MODEL}"),
        ("prefix-only", "models/"),
        ("extra-segments", f"models/{MODEL}/versions/1"),
        ("trailing-slash", f"models/{MODEL}/"),
        ("uppercase", "models/Alpha"),
        ("too-long", "models/" + "a" * 64),
        ("wildcard", "models/-"),
    ]
]

VERSION_NAME_CASES = [
    Case(f"GetModelVersion/name/{label}", "GetModelVersion", get_version(name), INVALID, "name")
    for label, name in [
        ("empty", ""),
        ("number-0", f"{PARENT}/versions/0"),
        ("number-negative", f"{PARENT}/versions/-1"),
        ("number-leading-zero", f"{PARENT}/versions/01"),
        ("number-beyond-int64", f"{PARENT}/versions/9223372036854775808"),
        ("number-fraction", f"{PARENT}/versions/1.5"),
        ("alias-bad-chars", f"{PARENT}/versions/champ!on"),
        ("alias-uppercase", f"{PARENT}/versions/Champion"),
        ("wrong-collection", f"{PARENT}/revisions/1"),
        ("singular-collection", f"{PARENT}/version/1"),
        ("empty-version", f"{PARENT}/versions/"),
        ("extra-segments", f"{PARENT}/versions/1/artifacts"),
        ("model-only", PARENT),
        ("bad-model-id", "models/Alpha/versions/1"),
        ("wildcard-version", f"{PARENT}/versions/-"),
    ]
]

FILTER_CASES_MODELS = [
    ("unknown-field", "colour = red"),
    ("version-field-on-models", "stage = PRODUCTION"),
    ("missing-value", "name ="),
    ("missing-operator", "name"),
    ("unclosed-paren", '(name = "a"'),
    ("unmatched-paren", 'name = "a")'),
    ("empty-parens", "()"),
    ("dangling-or", 'name = "a" OR'),
    ("lone-keyword", "AND"),
    ("unclosed-string", 'name = "alpha'),
    ("bang-without-equals", 'name ! "a"'),
    ("comma", 'name = "a", owner = "b"'),
    ("double-equals", 'name == "a"'),
    ("unknown-operator", "name @ a"),
    ("subfield-on-string", 'name.first = "a"'),
    ("map-without-key", 'labels = "ml"'),
    ("labels-dot-without-key", 'labels. = "ml"'),
    ("timestamp-not-a-time", 'create_time > "yesterday"'),
    ("timestamp-month-13", 'create_time > "2026-13-01T00:00:00Z"'),
    ("timestamp-without-zone", 'create_time > "2026-01-01T00:00:00"'),
    ("timestamp-number", "create_time > 5"),
    ("timestamp-has", 'create_time:"2026"'),
    ("too-deep", "(" * 40 + 'name = "a"' + ")" * 40),
    ("too-long", 'name = "' + "a" * 4100 + '"'),
]

FILTER_CASES_VERSIONS = [
    ("unknown-field", "accuracy > 0.5"),
    ("integer-given-string", 'version = "one"'),
    ("integer-given-fraction", "version = 1.5"),
    ("integer-out-of-range", "version > 99999999999999999999"),
    ("metric-given-string", 'metrics.accuracy = "high"'),
    ("metric-given-word", "metrics.accuracy > high"),
    ("metric-huge-exponent", "metrics.accuracy > 1e999999"),
    ("metric-has-text", 'metrics.accuracy:"9"'),
    ("enum-unknown-value", "stage = SHIPPED"),
    ("enum-ordering", "stage > STAGING"),
    ("enum-given-number", "stage = 3"),
    ("status-unknown", "status = DONE"),
    ("metrics-without-key", "metrics > 1"),
    ("bad-timestamp", 'update_time < "2026-02-30T00:00:00Z"'),
]

ORDER_CASES_MODELS = [
    ("unknown-field", "colour"),
    ("version-field-on-models", "version"),
    ("duplicate", "name, name desc"),
    ("bad-direction", "name sideways"),
    ("empty-item", "name,,create_time"),
    ("subfield", "name.first"),
    ("too-many-words", "name desc asc"),
]

ORDER_CASES_VERSIONS = [
    ("unknown-field", "accuracy"),
    ("duplicate", "version, create_time, version desc"),
    ("duplicate-metric", "metrics.accuracy, metrics.accuracy desc"),
    ("map-without-key", "metrics desc"),
    ("not-orderable", "stage"),
    ("too-many-keys", ", ".join(f"metrics.m{i}" for i in range(9))),
]

LIST_CASES = [
    Case("ListModels/page_size/negative", "ListModels", list_models(page_size=-1), INVALID,
         "page_size"),
    *[
        Case(f"ListModels/filter/{label}", "ListModels", list_models(filter=text), INVALID,
             "filter")
        for label, text in FILTER_CASES_MODELS
    ],
    *[
        Case(f"ListModels/order_by/{label}", "ListModels", list_models(order_by=text), INVALID,
             "order_by")
        for label, text in ORDER_CASES_MODELS
    ],
    Case("ListModels/page_token/garbage", "ListModels", list_models(page_token="not a token!"),
         INVALID, "page_token"),
    Case("ListModels/page_token/base64-garbage", "ListModels",
         list_models(page_token="AAAAAAAAAAAAAAAAAAAAAAAAAAAA"), INVALID, "page_token"),
    Case("ListModels/page_token/tampered", "ListModels",
         lambda w: pb.ListModelsRequest(page_size=1, page_token=tamper(w.models_token)),
         INVALID, "page_token"),
    Case("ListModels/page_token/truncated", "ListModels",
         lambda w: pb.ListModelsRequest(page_size=1, page_token=w.models_token[:-3]),
         INVALID, "page_token"),
    Case("ListModels/page_token/with-another-filter", "ListModels",
         lambda w: pb.ListModelsRequest(page_token=w.models_token, filter='owner = "nlp"'),
         INVALID, "page_token"),
    Case("ListModels/page_token/with-another-order", "ListModels",
         lambda w: pb.ListModelsRequest(page_token=w.models_token, order_by="create_time"),
         INVALID, "page_token"),
    Case("ListModels/page_token/from-ListModelVersions", "ListModels",
         lambda w: pb.ListModelsRequest(page_token=w.versions_token), INVALID, "page_token"),
    Case("ListModelVersions/parent/bad", "ListModelVersions", list_versions(parent="models"),
         INVALID, "parent"),
    Case("ListModelVersions/parent/version-name", "ListModelVersions",
         list_versions(parent=PRODUCTION), INVALID, "parent"),
    Case("ListModelVersions/parent/missing", "ListModelVersions",
         list_versions(parent="models/nope"), NOT_FOUND),
    Case("ListModelVersions/page_size/negative", "ListModelVersions",
         list_versions(page_size=-5), INVALID, "page_size"),
    *[
        Case(f"ListModelVersions/filter/{label}", "ListModelVersions",
             list_versions(parent="models/-", filter=text), INVALID, "filter")
        for label, text in FILTER_CASES_VERSIONS
    ],
    *[
        Case(f"ListModelVersions/order_by/{label}", "ListModelVersions",
             list_versions(order_by=text), INVALID, "order_by")
        for label, text in ORDER_CASES_VERSIONS
    ],
    Case("ListModelVersions/page_token/garbage", "ListModelVersions",
         list_versions(page_token="%%%"), INVALID, "page_token"),
    Case("ListModelVersions/page_token/tampered", "ListModelVersions",
         lambda w: pb.ListModelVersionsRequest(
             parent=PARENT, filter=w.versions_token_filter, page_token=tamper(w.versions_token)
         ), INVALID, "page_token"),
    Case("ListModelVersions/page_token/with-another-filter", "ListModelVersions",
         lambda w: pb.ListModelVersionsRequest(
             parent=PARENT, filter="metrics.accuracy > 0.6", page_token=w.versions_token
         ), INVALID, "page_token"),
    Case("ListModelVersions/page_token/without-its-filter", "ListModelVersions",
         lambda w: pb.ListModelVersionsRequest(parent=PARENT, page_token=w.versions_token),
         INVALID, "page_token"),
    Case("ListModelVersions/page_token/with-another-parent", "ListModelVersions",
         lambda w: pb.ListModelVersionsRequest(
             parent="models/-", filter=w.versions_token_filter, page_token=w.versions_token
         ), INVALID, "page_token"),
    Case("ListModelVersions/page_token/with-another-order", "ListModelVersions",
         lambda w: pb.ListModelVersionsRequest(
             parent=PARENT, filter=w.versions_token_filter, order_by="version",
             page_token=w.versions_token,
         ), INVALID, "page_token"),
    Case("ListStageTransitions/parent/bad", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(parent=PARENT), INVALID, "parent"),
    Case("ListStageTransitions/parent/version-0", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(parent=f"{PARENT}/versions/0"), INVALID,
         "parent"),
    Case("ListStageTransitions/parent/all-models", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(parent="models/-/versions/-"), INVALID,
         "parent"),
    Case("ListStageTransitions/parent/missing-model", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(parent="models/nope/versions/-"), NOT_FOUND),
    Case("ListStageTransitions/parent/missing-version", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(parent=f"{PARENT}/versions/99"), NOT_FOUND),
    Case("ListStageTransitions/parent/missing-alias", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(parent=f"{PARENT}/versions/nobody"),
         NOT_FOUND),
    Case("ListStageTransitions/page_size/negative", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(parent=f"{PARENT}/versions/-", page_size=-1),
         INVALID, "page_size"),
    Case("ListStageTransitions/page_token/garbage", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(
             parent=f"{PARENT}/versions/-", page_token="garbage"
         ), INVALID, "page_token"),
    Case("ListStageTransitions/page_token/tampered", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(
             parent=f"{PARENT}/versions/-", page_token=tamper(w.transitions_token)
         ), INVALID, "page_token"),
    Case("ListStageTransitions/page_token/with-another-parent", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(
             parent=PRODUCTION, page_token=w.transitions_token
         ), INVALID, "page_token"),
    Case("ListStageTransitions/page_token/from-ListAliasChanges", "ListStageTransitions",
         lambda w: pb.ListStageTransitionsRequest(
             parent=f"{PARENT}/versions/-", page_token=w.alias_changes_token
         ), INVALID, "page_token"),
    Case("ListModelHistory/parent/missing", "ListModelHistory",
         lambda w: pb.ListModelHistoryRequest(parent="models/nope"), NOT_FOUND),
    Case("ListModelHistory/parent/bad", "ListModelHistory",
         lambda w: pb.ListModelHistoryRequest(parent="models/-"), INVALID, "parent"),
    Case("ListModelHistory/key/without-kind", "ListModelHistory",
         lambda w: pb.ListModelHistoryRequest(parent=PARENT, key="PRODUCTION"), INVALID, "key"),
    Case("ListModelHistory/kind/unknown", "ListModelHistory",
         lambda w: pb.ListModelHistoryRequest(parent=PARENT, kind=42), INVALID, "kind"),
    Case("ListAliasChanges/parent/bad", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(parent=PRODUCTION), INVALID, "parent"),
    Case("ListAliasChanges/parent/wildcard", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(parent="models/-"), INVALID, "parent"),
    Case("ListAliasChanges/parent/missing", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(parent="models/nope"), NOT_FOUND),
    Case("ListAliasChanges/page_size/negative", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(parent=PARENT, page_size=-1), INVALID, "page_size"),
    Case("ListAliasChanges/page_token/garbage", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(parent=PARENT, page_token="x"), INVALID,
         "page_token"),
    Case("ListAliasChanges/page_token/tampered", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(
             parent=PARENT, page_token=tamper(w.alias_changes_token)
         ), INVALID, "page_token"),
    Case("ListAliasChanges/page_token/with-another-parent", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(
             parent=f"models/{EMPTY_MODEL}", page_token=w.alias_changes_token
         ), INVALID, "page_token"),
    Case("ListAliasChanges/page_token/from-ListStageTransitions", "ListAliasChanges",
         lambda w: pb.ListAliasChangesRequest(parent=PARENT, page_token=w.transitions_token),
         INVALID, "page_token"),
]  # fmt: skip

MODEL_CASES = [
    Case("CreateModel/already-exists", "CreateModel", create_model(MODEL), EXISTS),
    Case("CreateModel/already-exists-with-new-request-id", "CreateModel",
         create_model(MODEL, request_id="8d0f0c2e-new"), EXISTS),
    Case("CreateModel/description/too-long", "CreateModel",
         create_model(description=TOO_LONG_DESCRIPTION), INVALID, "model.description"),
    Case("CreateModel/description/nul", "CreateModel", create_model(description="a\x00b"),
         INVALID, "model.description"),
    Case("CreateModel/owner/too-long", "CreateModel", create_model(owner="o" * 257), INVALID,
         "model.owner"),
    Case("CreateModel/labels/too-many", "CreateModel", create_model(labels=many(65)), INVALID,
         "model.labels"),
    Case("CreateModel/labels/uppercase-key", "CreateModel", create_model(labels={"Team": "ml"}),
         INVALID, "model.labels['Team']"),
    Case("CreateModel/labels/key-starts-with-digit", "CreateModel",
         create_model(labels={"1team": "ml"}), INVALID, "model.labels['1team']"),
    Case("CreateModel/labels/empty-key", "CreateModel", create_model(labels={"": "ml"}), INVALID,
         "model.labels['']"),
    Case("CreateModel/labels/value-too-long", "CreateModel",
         create_model(labels={"team": "v" * 257}), INVALID, "model.labels['team']"),
    Case("CreateModel/request_id/too-long", "CreateModel", create_model(request_id="r" * 129),
         INVALID, "request_id"),
    Case("GetModel/missing", "GetModel", get_model("models/nope"), NOT_FOUND),
    Case("UpdateModel/name/bad", "UpdateModel", update_model(["description"], name=MODEL),
         INVALID, "model.name"),
    Case("UpdateModel/name/empty", "UpdateModel", update_model(["description"], name=""),
         INVALID, "model.name"),
    Case("UpdateModel/missing", "UpdateModel",
         update_model(["description"], name="models/nope", description="x"), NOT_FOUND),
    Case("UpdateModel/update_mask/empty", "UpdateModel", update_model([], description="x"),
         INVALID, "update_mask"),
    Case("UpdateModel/update_mask/unknown", "UpdateModel", update_model(["colour"]), INVALID,
         "update_mask"),
    Case("UpdateModel/update_mask/map-key", "UpdateModel", update_model(["labels.team"]),
         INVALID, "update_mask"),
    Case("UpdateModel/update_mask/star-and-field", "UpdateModel",
         update_model(["*", "description"]), INVALID, "update_mask"),
    *[
        Case(f"UpdateModel/update_mask/output-only-{path}", "UpdateModel", update_model([path]),
             INVALID, "update_mask")
        for path in ("name", "etag", "create_time", "update_time", "latest_version")
    ],
    Case("UpdateModel/etag/stale", "UpdateModel",
         lambda w: pb.UpdateModelRequest(
             model=model_pb2.Model(
                 name=f"models/{EMPTY_MODEL}", description="x", etag=w.stale_model_etag
             ),
             update_mask={"paths": ["description"]},
         ), ABORTED),
    Case("UpdateModel/etag/garbage", "UpdateModel",
         update_model(["description"], description="x", etag="not-an-etag"), ABORTED),
    Case("UpdateModel/description/too-long", "UpdateModel",
         update_model(["description"], description=TOO_LONG_DESCRIPTION), INVALID,
         "model.description"),
    Case("UpdateModel/labels/too-many", "UpdateModel", update_model(["labels"], labels=many(65)),
         INVALID, "model.labels"),
    Case("UpdateModel/labels/bad-key", "UpdateModel",
         update_model(["labels"], labels={"bad key": "x"}), INVALID, "model.labels['bad key']"),
    Case("UpdateModel/labels/value-too-long", "UpdateModel",
         update_model(["*"], labels={"team": "v" * 257}), INVALID, "model.labels['team']"),
    Case("DeleteModel/name/bad", "DeleteModel", lambda w: pb.DeleteModelRequest(name="models"),
         INVALID, "name"),
    Case("DeleteModel/missing", "DeleteModel",
         lambda w: pb.DeleteModelRequest(name="models/nope", force=True), NOT_FOUND),
    Case("DeleteModel/has-versions-without-force", "DeleteModel",
         lambda w: pb.DeleteModelRequest(name=PARENT), PRECONDITION),
    Case("DeleteModel/etag/stale", "DeleteModel",
         lambda w: pb.DeleteModelRequest(
             name=f"models/{EMPTY_MODEL}", etag=w.stale_model_etag
         ), ABORTED),
    Case("DeleteModel/etag/stale-with-force", "DeleteModel",
         lambda w: pb.DeleteModelRequest(
             name=PARENT, etag=w.models[EMPTY_MODEL].etag, force=True
         ), ABORTED),
]  # fmt: skip

VERSION_CASES = [
    Case("CreateModelVersion/parent/bad", "CreateModelVersion", create_version(parent=MODEL),
         INVALID, "parent"),
    Case("CreateModelVersion/parent/wildcard", "CreateModelVersion",
         create_version(parent="models/-"), INVALID, "parent"),
    Case("CreateModelVersion/parent/missing", "CreateModelVersion",
         create_version(parent="models/nope"), NOT_FOUND),
    Case("CreateModelVersion/description/too-long", "CreateModelVersion",
         create_version(description=TOO_LONG_DESCRIPTION), INVALID,
         "model_version.description"),
    Case("CreateModelVersion/labels/too-many", "CreateModelVersion",
         create_version(labels=many(65)), INVALID, "model_version.labels"),
    Case("CreateModelVersion/labels/bad-key", "CreateModelVersion",
         create_version(labels={"Team": "ml"}), INVALID, "model_version.labels['Team']"),
    Case("CreateModelVersion/labels/value-too-long", "CreateModelVersion",
         create_version(labels={"team": "v" * 257}), INVALID, "model_version.labels['team']"),
    Case("CreateModelVersion/parameters/too-many", "CreateModelVersion",
         create_version(parameters=many(1025)), INVALID, "model_version.parameters"),
    Case("CreateModelVersion/parameters/key-starts-with-digit", "CreateModelVersion",
         create_version(parameters={"1lr": "0.1"}), INVALID, "model_version.parameters['1lr']"),
    Case("CreateModelVersion/parameters/key-with-space", "CreateModelVersion",
         create_version(parameters={"learning rate": "0.1"}), INVALID,
         "model_version.parameters['learning rate']"),
    Case("CreateModelVersion/parameters/key-too-long", "CreateModelVersion",
         create_version(parameters={"k" * 257: "1"}), INVALID,
         f"model_version.parameters['{'k' * 64}'…]"),
    Case("CreateModelVersion/parameters/value-too-long", "CreateModelVersion",
         create_version(parameters={"lr": "é" * 2049}), INVALID,
         "model_version.parameters['lr']"),
    Case("CreateModelVersion/metrics/too-many", "CreateModelVersion",
         create_version(metrics=many(1025, 1.0)), INVALID, "model_version.metrics"),
    *[
        Case(f"CreateModelVersion/metrics/{label}", "CreateModelVersion",
             create_version(metrics={"loss": value}), INVALID, "model_version.metrics['loss']")
        for label, value in (("nan", float("nan")), ("inf", float("inf")),
                             ("minus-inf", float("-inf")))
    ],
    Case("CreateModelVersion/metrics/bad-key", "CreateModelVersion",
         create_version(metrics={"f1 score": 0.9}), INVALID,
         "model_version.metrics['f1 score']"),
    Case("CreateModelVersion/input_schema/dtype-unspecified", "CreateModelVersion",
         create_version(input_schema=schema(MV.SchemaField(name="x"))), INVALID,
         "model_version.input_schema.fields[0].dtype"),
    Case("CreateModelVersion/input_schema/duplicate-names", "CreateModelVersion",
         create_version(input_schema=schema(SCHEMA_TEXT, SCHEMA_TEXT)), INVALID,
         "model_version.input_schema.fields[1].name"),
    Case("CreateModelVersion/input_schema/empty-name", "CreateModelVersion",
         create_version(input_schema=schema(MV.SchemaField(dtype=MV.DATA_TYPE_INT64))), INVALID,
         "model_version.input_schema.fields[0].name"),
    Case("CreateModelVersion/input_schema/name-too-long", "CreateModelVersion",
         create_version(input_schema=schema(
             MV.SchemaField(name="n" * 257, dtype=MV.DATA_TYPE_INT64)
         )), INVALID, "model_version.input_schema.fields[0].name"),
    *[
        Case(f"CreateModelVersion/output_schema/shape-{label}", "CreateModelVersion",
             create_version(output_schema=schema(
                 MV.SchemaField(name="y", dtype=MV.DATA_TYPE_FLOAT32, shape=shape)
             )), INVALID, "model_version.output_schema.fields[0].shape")
        for label, shape in (("zero", [0]), ("minus-two", [4, -2]), ("33-dims", [1] * 33))
    ],
    Case("CreateModelVersion/lineage/training-dataset-without-name", "CreateModelVersion",
         create_version(lineage=MV.Lineage(
             training_datasets=[MV.DatasetReference(uri="s3://bucket/train")]
         )), INVALID, "model_version.lineage.training_datasets[0].name"),
    Case("CreateModelVersion/lineage/evaluation-dataset-without-name", "CreateModelVersion",
         create_version(lineage=MV.Lineage(
             evaluation_datasets=[MV.DatasetReference(name="ok"), MV.DatasetReference()]
         )), INVALID, "model_version.lineage.evaluation_datasets[1].name"),
    Case("CreateModelVersion/lineage/too-many-datasets", "CreateModelVersion",
         create_version(lineage=MV.Lineage(
             training_datasets=[MV.DatasetReference(name=f"d{i}") for i in range(101)]
         )), INVALID, "model_version.lineage.training_datasets"),
    Case("CreateModelVersion/lineage/run_id-too-long", "CreateModelVersion",
         create_version(lineage=MV.Lineage(run_id="r" * 257)), INVALID,
         "model_version.lineage.run_id"),
    *[
        Case(f"CreateModelVersion/lineage/derived_from-{label}", "CreateModelVersion",
             create_version(lineage=MV.Lineage(derived_from=name)), INVALID,
             "model_version.lineage.derived_from")
        for label, name in (("model-name", PARENT), ("version-0", f"{PARENT}/versions/0"),
                            ("bad-alias", f"{PARENT}/versions/Best!"),
                            ("wrong-collection", f"{PARENT}/runs/1"))
    ],
    Case("CreateModelVersion/lineage/derived_from-missing-version", "CreateModelVersion",
         create_version(lineage=MV.Lineage(derived_from=f"{PARENT}/versions/99")), NOT_FOUND),
    Case("CreateModelVersion/lineage/derived_from-missing-alias", "CreateModelVersion",
         create_version(lineage=MV.Lineage(derived_from=f"{PARENT}/versions/nobody")),
         NOT_FOUND),
    Case("CreateModelVersion/lineage/derived_from-missing-model", "CreateModelVersion",
         create_version(lineage=MV.Lineage(derived_from="models/nope/versions/1")), NOT_FOUND),
    Case("CreateModelVersion/request_id/too-long", "CreateModelVersion",
         create_version(request_id="r" * 129), INVALID, "request_id"),
    Case("CreateModelVersion/request_id/control-char", "CreateModelVersion",
         create_version(request_id="abc\n"), INVALID, "request_id"),
    *VERSION_NAME_CASES,
    Case("GetModelVersion/missing-number", "GetModelVersion", get_version(f"{PARENT}/versions/99"),
         NOT_FOUND),
    Case("GetModelVersion/missing-alias", "GetModelVersion",
         get_version(f"{PARENT}/versions/nobody"), NOT_FOUND),
    Case("GetModelVersion/missing-model", "GetModelVersion", get_version("models/nope/versions/1"),
         NOT_FOUND),
    Case("GetModelVersion/latest-of-model-without-versions", "GetModelVersion",
         get_version(f"models/{EMPTY_MODEL}/versions/latest"), NOT_FOUND),
    Case("UpdateModelVersion/name/bad", "UpdateModelVersion",
         update_version(["description"], name=f"{PARENT}/versions/0"), INVALID,
         "model_version.name"),
    Case("UpdateModelVersion/name/model-only", "UpdateModelVersion",
         update_version(["description"], name=PARENT), INVALID, "model_version.name"),
    Case("UpdateModelVersion/missing", "UpdateModelVersion",
         update_version(["description"], name=f"{PARENT}/versions/99"), NOT_FOUND),
    Case("UpdateModelVersion/missing-model", "UpdateModelVersion",
         update_version(["description"], name="models/nope/versions/1"), NOT_FOUND),
    Case("UpdateModelVersion/update_mask/empty", "UpdateModelVersion",
         update_version([], description="x"), INVALID, "update_mask"),
    Case("UpdateModelVersion/update_mask/unknown", "UpdateModelVersion",
         update_version(["colour"]), INVALID, "update_mask"),
    *[
        Case(f"UpdateModelVersion/update_mask/output-only-{path}", "UpdateModelVersion",
             update_version([path]), INVALID, "update_mask")
        for path in ("stage", "aliases", "etag", "name", "version", "status", "created_by",
                     "create_time", "update_time")
    ],
    Case("UpdateModelVersion/update_mask/valid-then-output-only", "UpdateModelVersion",
         update_version(["description", "stage"], description="x",
                        stage=MV.STAGE_PRODUCTION), INVALID, "update_mask"),
    Case("UpdateModelVersion/etag/stale", "UpdateModelVersion",
         lambda w: pb.UpdateModelVersionRequest(
             model_version=MV.ModelVersion(
                 name=PRODUCTION, description="x", etag=w.stale_version_etag
             ),
             update_mask={"paths": ["description"]},
         ), ABORTED),
    Case("UpdateModelVersion/etag/of-another-version", "UpdateModelVersion",
         lambda w: pb.UpdateModelVersionRequest(
             model_version=MV.ModelVersion(
                 name=DEVELOPMENT, description="x", etag=w.versions[STAGING].etag
             ),
             update_mask={"paths": ["description"]},
         ), ABORTED),
    Case("UpdateModelVersion/metrics/nan", "UpdateModelVersion",
         update_version(["metrics"], metrics={"loss": float("nan")}), INVALID,
         "model_version.metrics['loss']"),
    Case("UpdateModelVersion/parameters/bad-key", "UpdateModelVersion",
         update_version(["parameters"], parameters={"-lr": "1"}), INVALID,
         "model_version.parameters['-lr']"),
    Case("UpdateModelVersion/description/too-long", "UpdateModelVersion",
         update_version(["*"], description=TOO_LONG_DESCRIPTION), INVALID,
         "model_version.description"),
    Case("UpdateModelVersion/input_schema/duplicate-names", "UpdateModelVersion",
         update_version(["input_schema"], input_schema=schema(SCHEMA_TEXT, SCHEMA_TEXT)),
         INVALID, "model_version.input_schema.fields[1].name"),
    Case("UpdateModelVersion/lineage/derived_from-malformed", "UpdateModelVersion",
         update_version(["lineage"], lineage=MV.Lineage(derived_from="versions/1")), INVALID,
         "model_version.lineage.derived_from"),
    Case("UpdateModelVersion/lineage/derived_from-missing", "UpdateModelVersion",
         update_version(["lineage"], lineage=MV.Lineage(derived_from=f"{PARENT}/versions/42")),
         NOT_FOUND),
    Case("DeleteModelVersion/name/bad", "DeleteModelVersion",
         lambda w: pb.DeleteModelVersionRequest(name=f"{PARENT}/versions/01"), INVALID, "name"),
    Case("DeleteModelVersion/missing", "DeleteModelVersion",
         lambda w: pb.DeleteModelVersionRequest(name=f"{PARENT}/versions/99"), NOT_FOUND),
    Case("DeleteModelVersion/missing-alias", "DeleteModelVersion",
         lambda w: pb.DeleteModelVersionRequest(name=f"{PARENT}/versions/nobody"), NOT_FOUND),
    Case("DeleteModelVersion/in-production", "DeleteModelVersion",
         lambda w: pb.DeleteModelVersionRequest(name=PRODUCTION), PRECONDITION),
    Case("DeleteModelVersion/in-production-by-alias", "DeleteModelVersion",
         lambda w: pb.DeleteModelVersionRequest(name=f"{PARENT}/versions/{ALIAS}"),
         PRECONDITION),
    Case("DeleteModelVersion/etag/stale", "DeleteModelVersion",
         lambda w: pb.DeleteModelVersionRequest(
             name=DEVELOPMENT, etag=w.versions[ARCHIVED].etag
         ), ABORTED),
]  # fmt: skip

LIFECYCLE_CASES = [
    Case("TransitionModelVersionStage/name/bad", "TransitionModelVersionStage",
         move(f"{PARENT}/versions/-1", MV.STAGE_STAGING), INVALID, "name"),
    Case("TransitionModelVersionStage/missing", "TransitionModelVersionStage",
         move(f"{PARENT}/versions/99", MV.STAGE_STAGING), NOT_FOUND),
    Case("TransitionModelVersionStage/missing-model", "TransitionModelVersionStage",
         move("models/nope/versions/1", MV.STAGE_STAGING), NOT_FOUND),
    Case("TransitionModelVersionStage/stage/unspecified", "TransitionModelVersionStage",
         move(DEVELOPMENT, MV.STAGE_UNSPECIFIED), INVALID, "stage"),
    Case("TransitionModelVersionStage/stage/unknown-number", "TransitionModelVersionStage",
         move(DEVELOPMENT, 99), INVALID, "stage"),
    Case("TransitionModelVersionStage/reason/too-long", "TransitionModelVersionStage",
         move(DEVELOPMENT, MV.STAGE_STAGING, reason="r" * 1025), INVALID, "reason"),
    Case("TransitionModelVersionStage/reason/control-char", "TransitionModelVersionStage",
         move(DEVELOPMENT, MV.STAGE_STAGING, reason="because\x07"), INVALID, "reason"),
    *[
        Case(f"TransitionModelVersionStage/illegal/{label}", "TransitionModelVersionStage",
             move(name, stage), PRECONDITION, subject=name)
        for label, name, stage in (
            ("staging-to-development", STAGING, MV.STAGE_DEVELOPMENT),
            ("production-to-development", PRODUCTION, MV.STAGE_DEVELOPMENT),
            ("archived-to-development", ARCHIVED, MV.STAGE_DEVELOPMENT),
            ("development-to-development", DEVELOPMENT, MV.STAGE_DEVELOPMENT),
            ("staging-to-staging", STAGING, MV.STAGE_STAGING),
            ("production-to-production", PRODUCTION, MV.STAGE_PRODUCTION),
            ("archived-to-archived", ARCHIVED, MV.STAGE_ARCHIVED),
        )
    ],
    *[
        Case(f"TransitionModelVersionStage/production-occupied/{label}",
             "TransitionModelVersionStage", move(name, MV.STAGE_PRODUCTION), PRECONDITION,
             subject=PRODUCTION)
        for label, name in (("from-staging", STAGING), ("from-development", DEVELOPMENT),
                            ("from-archived", ARCHIVED))
    ],
    Case("TransitionModelVersionStage/etag/stale", "TransitionModelVersionStage",
         lambda w: pb.TransitionModelVersionStageRequest(
             name=PRODUCTION, stage=MV.STAGE_ARCHIVED, etag=w.stale_version_etag
         ), ABORTED),
    Case("SetModelVersionAlias/name/bad", "SetModelVersionAlias",
         set_alias(f"{PARENT}/versions/0", "best"), INVALID, "name"),
    Case("SetModelVersionAlias/missing-version", "SetModelVersionAlias",
         set_alias(f"{PARENT}/versions/99", "best"), NOT_FOUND),
    Case("SetModelVersionAlias/missing-alias-as-target", "SetModelVersionAlias",
         set_alias(f"{PARENT}/versions/nobody", "best"), NOT_FOUND),
    Case("SetModelVersionAlias/missing-model", "SetModelVersionAlias",
         set_alias("models/nope/versions/1", "best"), NOT_FOUND),
    *[
        Case(f"SetModelVersionAlias/alias/{label}", "SetModelVersionAlias",
             set_alias(DEVELOPMENT, alias), INVALID, "alias")
        for label, alias in (
            ("empty", ""), ("uppercase", "Best"), ("starts-with-digit", "1st"),
            ("dot", "best.one"), ("space", "best one"), ("too-long", "a" * 64),
            ("reserved-latest", "latest"), ("wildcard", "-"), ("number", "7"),
        )
    ],
    Case("DeleteModelVersionAlias/model/bad", "DeleteModelVersionAlias",
         lambda w: pb.DeleteModelVersionAliasRequest(model=PRODUCTION, alias=ALIAS), INVALID,
         "model"),
    Case("DeleteModelVersionAlias/alias/bad", "DeleteModelVersionAlias",
         lambda w: pb.DeleteModelVersionAliasRequest(model=PARENT, alias="Champion"), INVALID,
         "alias"),
    Case("DeleteModelVersionAlias/alias/reserved-latest", "DeleteModelVersionAlias",
         lambda w: pb.DeleteModelVersionAliasRequest(model=PARENT, alias="latest"), INVALID,
         "alias"),
    Case("DeleteModelVersionAlias/alias/missing", "DeleteModelVersionAlias",
         lambda w: pb.DeleteModelVersionAliasRequest(model=PARENT, alias="nobody"), NOT_FOUND),
    Case("DeleteModelVersionAlias/alias/of-another-model", "DeleteModelVersionAlias",
         lambda w: pb.DeleteModelVersionAliasRequest(model=f"models/{EMPTY_MODEL}", alias=ALIAS),
         NOT_FOUND),
    Case("DeleteModelVersionAlias/missing-model", "DeleteModelVersionAlias",
         lambda w: pb.DeleteModelVersionAliasRequest(model="models/nope", alias=ALIAS), NOT_FOUND),
    Case("CompareModelVersions/none", "CompareModelVersions", compare(), INVALID, "names"),
    Case("CompareModelVersions/one", "CompareModelVersions", compare(PRODUCTION), INVALID,
         "names"),
    Case("CompareModelVersions/eleven", "CompareModelVersions",
         compare(*([PRODUCTION, STAGING, DEVELOPMENT, ARCHIVED] * 3)[:11]), INVALID, "names"),
    Case("CompareModelVersions/same-number-twice", "CompareModelVersions",
         compare(PRODUCTION, STAGING, PRODUCTION), INVALID, "names"),
    Case("CompareModelVersions/same-version-by-alias", "CompareModelVersions",
         compare(PRODUCTION, f"{PARENT}/versions/{ALIAS}"), INVALID, "names"),
    Case("CompareModelVersions/malformed-name", "CompareModelVersions",
         compare(PRODUCTION, f"{PARENT}/versions/0"), INVALID, "names[1]"),
    Case("CompareModelVersions/missing-version", "CompareModelVersions",
         compare(PRODUCTION, f"{PARENT}/versions/99"), NOT_FOUND),
    Case("CompareModelVersions/missing-model", "CompareModelVersions",
         compare(PRODUCTION, "models/nope/versions/1"), NOT_FOUND),
]  # fmt: skip

CASES = [
    *MODEL_ID_CASES,
    *MODEL_NAME_CASES,
    *MODEL_CASES,
    *LIST_CASES,
    *VERSION_CASES,
    *LIFECYCLE_CASES,
]


def test_the_table_covers_every_rpc_and_has_unique_ids() -> None:
    service = pb.DESCRIPTOR.services_by_name["RegistryService"]
    assert {case.rpc for case in CASES} == set(service.methods_by_name)
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert (case.field is not None) == (case.code == INVALID), case.id


@dataclass
class Seeded:
    registry: helpers.Stub
    world: World
    conn: asyncpg.Connection
    tables: dict[str, list[str]]


class SeededWorlds:
    """One seeded database and server shared by the cases of this module.

    Seeding a world per case would cost a database, a server and ~20 RPCs each time, several
    minutes for the table. Sharing is sound because every case asserts that nothing changed;
    a case that did change something fails and gets the world replaced, so the cases after it
    still start from the seeded state.
    """

    def __init__(self, endpoints: StoreEndpoints) -> None:
        self._endpoints = endpoints
        self._stack: contextlib.AsyncExitStack | None = None
        self._seeded: Seeded | None = None

    async def current(self) -> Seeded:
        if self._seeded is None:
            self._stack = contextlib.AsyncExitStack()
            dsn = await self._stack.enter_async_context(helpers.fresh_database(self._endpoints))
            registry = await self._stack.enter_async_context(
                helpers.running_registry(dsn, self._endpoints)
            )
            world = await helpers.seed_world(registry)
            conn = await asyncpg.connect(dsn)
            self._stack.push_async_callback(conn.close)
            self._seeded = Seeded(registry, world, conn, await helpers.snapshot(conn))
        return self._seeded

    async def discard(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack, self._seeded = None, None


@pytest.fixture(scope="module")
async def seeded_worlds(store_endpoints: StoreEndpoints) -> AsyncIterator[SeededWorlds]:
    worlds = SeededWorlds(store_endpoints)
    try:
        yield worlds
    finally:
        await worlds.discard()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input_is_refused_and_changes_nothing(
    case: Case, seeded_worlds: SeededWorlds
) -> None:
    seeded = await seeded_worlds.current()
    request = case.request(seeded.world)

    failure: grpc.aio.AioRpcError | None = None
    try:
        await getattr(seeded.registry, case.rpc)(request, timeout=10)
    except grpc.aio.AioRpcError as err:
        failure = err

    after = await helpers.snapshot(seeded.conn)
    if after != seeded.tables:
        await seeded_worlds.discard()
    assert failure is not None, f"{case.rpc} accepted the request"
    error = helpers.error_details(failure)
    assert error.code == case.code, error.message
    helpers.assert_clean_message(error.message)
    assert [info.domain for info in error.error_infos] == [helpers.ERROR_DOMAIN], error
    assert error.error_infos[0].reason, error
    if case.field is not None:
        assert case.field in error.bad_request_fields, (error.bad_request_fields, error.message)
    if case.subject is not None:
        assert case.subject in error.precondition_subjects, error
    assert after == seeded.tables, "a refused call changed stored state"
