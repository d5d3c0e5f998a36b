"""The CLI's pure parts: k=v parsing, references, update masks, error lines and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
import typer
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from typer.testing import CliRunner

from modelregistry import client
from modelregistry.cli import common, errors, models, parsing, versions
from modelregistry.v1 import model_version_pb2

runner = CliRunner()


# --- k=v, metrics, stages, schemas ---------------------------------------------------------


def test_pairs_split_on_the_first_equals_sign() -> None:
    assert parsing.parse_pairs(["a=1", "b=x=y", "c="], "--label") == {
        "a": "1",
        "b": "x=y",
        "c": "",
    }
    assert parsing.parse_pairs(None, "--label") == {}


@pytest.mark.parametrize("raw", ["novalue", "=v", ""])
def test_a_pair_without_key_or_equals_is_a_usage_error(raw: str) -> None:
    with pytest.raises(typer.BadParameter, match="KEY=VALUE"):
        parsing.parse_pairs([raw], "--label")


def test_metrics_are_floats() -> None:
    assert parsing.parse_metrics(["acc=0.91", "loss=1e-3", "n=3"]) == {
        "acc": 0.91,
        "loss": 0.001,
        "n": 3.0,
    }


@pytest.mark.parametrize("raw", ["x=abc", "x=", "x=nan", "x=inf"])
def test_a_metric_that_is_not_a_finite_number_is_a_usage_error(raw: str) -> None:
    with pytest.raises(typer.BadParameter, match="metric value"):
        parsing.parse_metrics([raw])


@pytest.mark.parametrize(
    ("raw", "stage"),
    [
        ("production", model_version_pb2.STAGE_PRODUCTION),
        ("PROD", model_version_pb2.STAGE_PRODUCTION),
        ("STAGE_STAGING", model_version_pb2.STAGE_STAGING),
        ("dev", model_version_pb2.STAGE_DEVELOPMENT),
        ("Archived", model_version_pb2.STAGE_ARCHIVED),
    ],
)
def test_stage_names(raw: str, stage: int) -> None:
    assert parsing.parse_stage(raw) == stage


def test_an_unknown_stage_lists_the_choices() -> None:
    with pytest.raises(typer.BadParameter, match="staging"):
        parsing.parse_stage("shipped")


def test_schema_from_inline_json_accepts_short_dtypes() -> None:
    schema = parsing.parse_schema(
        '[{"name": "ids", "dtype": "int64", "shape": [-1, 512]}]', "--input-schema"
    )
    assert schema.fields[0].name == "ids"
    assert schema.fields[0].dtype == model_version_pb2.DATA_TYPE_INT64
    assert list(schema.fields[0].shape) == [-1, 512]


def test_schema_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"fields": [{"name": "p", "dtype": "DATA_TYPE_FLOAT32"}]}))
    schema = parsing.parse_schema(str(path), "--output-schema")
    assert schema.fields[0].dtype == model_version_pb2.DATA_TYPE_FLOAT32


@pytest.mark.parametrize("raw", ["/no/such/file.json", "{not json", '{"fields": [{"dtype": "x"}]}'])
def test_a_bad_schema_is_a_usage_error(raw: str) -> None:
    with pytest.raises(typer.BadParameter):
        parsing.parse_schema(raw, "--input-schema")


# --- update masks ----------------------------------------------------------------------------


def test_model_mask_names_only_the_options_given() -> None:
    assert parsing.model_update_mask(description=None, owner=None, labels_changed=False) == []
    assert parsing.model_update_mask(description="", owner=None, labels_changed=True) == [
        "description",
        "labels",
    ]


def test_version_mask_in_a_stable_order() -> None:
    assert parsing.version_update_mask(
        labels_changed=True, metrics_changed=True, lineage_changed=True, output_schema=True
    ) == ["lineage", "metrics", "output_schema", "labels"]
    assert parsing.version_update_mask() == []


def test_merge_map_sets_and_removes() -> None:
    assert parsing.merge_map({"a": "1", "b": "2"}, {"b": "3", "c": "4"}, ["a"]) == {
        "b": "3",
        "c": "4",
    }


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "name"),
    [
        (["llama/3"], "models/llama/versions/3"),
        (["llama/champion"], "models/llama/versions/champion"),
        (["llama", "3"], "models/llama/versions/3"),
        (["models/llama", "latest"], "models/llama/versions/latest"),
        (["models/llama/versions/7"], "models/llama/versions/7"),
        (["models/3"], "models/models/versions/3"),  # a model that happens to be named "models"
    ],
)
def test_version_references(tokens: list[str], name: str) -> None:
    assert common.version_ref(tokens) == name


@pytest.mark.parametrize(
    "tokens", [["llama"], ["a/b/c"], ["llama", "3", "4"], ["llama", "a/b"], ["/3"]]
)
def test_a_bad_version_reference_is_a_usage_error(tokens: list[str]) -> None:
    with pytest.raises(typer.BadParameter):
        common.version_ref(tokens)


def test_model_references() -> None:
    assert client.model_name("llama") == "models/llama"
    assert client.model_name("models/llama") == "models/llama"
    with pytest.raises(client.BadReference):
        client.model_name("models/llama/versions/3")


def test_history_of_a_model_or_a_version() -> None:
    assert common.history_parent(["llama"]) == "models/llama/versions/-"
    assert common.history_parent(["models/llama"]) == "models/llama/versions/-"
    assert common.history_parent(["llama/2"]) == "models/llama/versions/2"
    assert common.history_parent(["llama", "2"]) == "models/llama/versions/2"


def test_compare_takes_a_model_and_versions_or_full_references() -> None:
    assert common.compare_names(["llama", "1", "champion", "other/4"]) == [
        "models/llama/versions/1",
        "models/llama/versions/champion",
        "models/other/versions/4",
    ]
    assert common.compare_names(["a/1", "models/b/versions/2"]) == [
        "models/a/versions/1",
        "models/b/versions/2",
    ]
    with pytest.raises(typer.BadParameter, match="at least two"):
        common.compare_names(["llama", "1"])


# --- errors ----------------------------------------------------------------------------------


class FakeRpcError(grpc.RpcError, grpc.Call):
    """What a sync stub raises: an RpcError that is also a Call."""

    def __init__(
        self, code: grpc.StatusCode, details: str, status: status_pb2.Status | None = None
    ) -> None:
        self._code, self._details = code, details
        self._trailers = (
            (("grpc-status-details-bin", status.SerializeToString()),) if status else ()
        )

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    # The stubs of RpcError and Call disagree here; grpc gives (key, value) pairs.
    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:  # type: ignore[override]
        return self._trailers

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    # None when no deadline was set (grpc's docs); the stub says float only.
    def time_remaining(self) -> None:  # type: ignore[override]
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def test_error_line_names_the_code_and_the_message() -> None:
    error = FakeRpcError(grpc.StatusCode.NOT_FOUND, 'model "x" not found')
    assert errors.format_rpc_error(error) == 'error: NOT_FOUND: model "x" not found'


def test_error_line_appends_field_violations_the_message_lacks() -> None:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="model_id", description="too long"),
            error_details_pb2.BadRequest.FieldViolation(field="labels", description="bad key"),
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    message = "model_id: too long"
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
    error = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, message, status)
    assert errors.format_rpc_error(error) == (
        "error: INVALID_ARGUMENT: model_id: too long (labels: bad key)"
    )


def test_error_line_does_not_repeat_conditions_the_message_states() -> None:
    failure = error_details_pb2.PreconditionFailure(
        violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type="METRIC", subject="accuracy", description="accuracy is 0.85, needs >= 0.9"
            ),
            error_details_pb2.PreconditionFailure.Violation(
                type="FLAG", subject="models/m/versions/1/flags/2", description="HIGH: drift"
            ),
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(failure)
    message = "models/m/versions/1 does not meet the policy: accuracy is 0.85, needs >= 0.9"
    status = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=message, details=[detail])
    error = FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, message, status)
    assert errors.format_rpc_error(error) == (
        f"error: FAILED_PRECONDITION: {message} (models/m/versions/1/flags/2: HIGH: drift)"
    )


def test_error_details_decode_the_reason_its_metadata_and_every_violation() -> None:
    details = []
    for message in (
        error_details_pb2.ErrorInfo(
            reason="WRONG_OFFSET",
            domain="modelregistry",
            metadata={"committed_size": "1048576"},
        ),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="offset", description="not 0")
            ]
        ),
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="STATE", subject="", description="the upload is not active"
                )
            ]
        ),
    ):
        detail = any_pb2.Any()
        detail.Pack(message)
        details.append(detail)
    status = status_pb2.Status(
        code=code_pb2.FAILED_PRECONDITION, message="wrong offset", details=details
    )
    error = FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "wrong offset", status)

    decoded = client.error_details(error)

    assert decoded.reason == "WRONG_OFFSET"
    assert decoded.metadata == {"committed_size": "1048576"}
    assert decoded.violations == (
        client.Violation("offset", "not 0"),
        client.Violation("", "the upload is not active"),
    )


def test_error_details_of_a_plain_status_are_empty() -> None:
    decoded = client.error_details(FakeRpcError(grpc.StatusCode.INTERNAL, "internal error"))
    assert decoded == client.ErrorDetails()


def test_error_line_is_one_line() -> None:
    error = FakeRpcError(grpc.StatusCode.INTERNAL, "internal error\nrequest id 7")
    assert errors.format_rpc_error(error) == "error: INTERNAL: internal error request id 7"


def test_unreachable_server_gets_a_hint() -> None:
    error = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
    line = errors.format_rpc_error(error, "127.0.0.1:1")
    assert line.startswith("error: UNAVAILABLE: failed to connect")
    assert "make run" in line
    assert "--target" in line


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.NOT_FOUND, 3),
        (grpc.StatusCode.ALREADY_EXISTS, 4),
        (grpc.StatusCode.FAILED_PRECONDITION, 5),
        (grpc.StatusCode.ABORTED, 5),
        (grpc.StatusCode.INVALID_ARGUMENT, 6),
        (grpc.StatusCode.UNAVAILABLE, 7),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 7),
        (grpc.StatusCode.PERMISSION_DENIED, 8),
        (grpc.StatusCode.UNAUTHENTICATED, 8),
        (grpc.StatusCode.INTERNAL, 1),
        (grpc.StatusCode.DATA_LOSS, 1),
        (None, 1),
    ],
)
def test_exit_codes_are_stable(code: grpc.StatusCode | None, exit_code: int) -> None:
    assert errors.exit_code_for(code) == exit_code


def test_exit_codes_are_documented() -> None:
    for number in range(9):
        assert f"{number} " in errors.EXIT_CODES_HELP


# --- the commands, without a server ---------------------------------------------------------


def test_bad_metric_is_a_usage_error_before_any_call() -> None:
    result = runner.invoke(
        versions.app, ["create", "m", "--metric", "x=abc", "--target", "127.0.0.1:1"]
    )
    assert result.exit_code == 2
    assert "metric value must be a number" in result.output


def test_label_without_equals_is_a_usage_error() -> None:
    result = runner.invoke(models.app, ["create", "m", "--label", "team", "--target", "x:1"])
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


def test_update_without_fields_is_a_usage_error() -> None:
    result = runner.invoke(models.app, ["update", "m", "--target", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "nothing to update" in result.output


def test_unreachable_server_is_one_line_and_exit_7() -> None:
    result = runner.invoke(models.app, ["get", "m", "--target", "127.0.0.1:1", "--timeout", "5"])
    assert result.exit_code == 7
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: UNAVAILABLE")
    assert "make run" in lines[0]


def test_channel_options_follow_the_perf_notes() -> None:
    options = dict(client.CHANNEL_OPTIONS)
    assert options["grpc.http2.bdp_probe"] == 0
    assert options["grpc.http2.lookahead_bytes"] == 16 * 1024 * 1024
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    assert options["grpc.max_send_message_length"] == 64 * 1024 * 1024


def test_connect_sends_the_token_as_bearer_metadata() -> None:
    from concurrent import futures

    from modelregistry.v1 import model_pb2
    from modelregistry.v1 import registry_service_pb2 as rs

    def get_model(request: rs.GetModelRequest, context: grpc.ServicerContext) -> model_pb2.Model:
        metadata = dict(context.invocation_metadata())
        return model_pb2.Model(name=request.name, owner=str(metadata.get("authorization")))

    handler = grpc.method_handlers_generic_handler(
        "modelregistry.v1.RegistryService",
        {
            "GetModel": grpc.unary_unary_rpc_method_handler(
                get_model,
                request_deserializer=rs.GetModelRequest.FromString,
                response_serializer=model_pb2.Model.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with client.connect(f"127.0.0.1:{port}", token="s3cret") as channel:
            model = client.registry(channel).GetModel(
                rs.GetModelRequest(name="models/m"), timeout=10
            )
    finally:
        server.stop(None)
    assert model.owner == "Bearer s3cret"
