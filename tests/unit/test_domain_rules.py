"""Pure rules: the stage machine, update masks, limits and comparison."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import pytest

from modelregistry.domain import lifecycle
from modelregistry.domain.comparison import compare
from modelregistry.domain.errors import FailedPrecondition, InvalidArgument
from modelregistry.domain.models import (
    Lineage,
    ModelVersion,
    SchemaField,
    Stage,
    VersionContent,
    VersionStatus,
)
from modelregistry.domain.update_masks import (
    VERSION_OUTPUT_ONLY,
    VERSION_UPDATABLE,
    apply_mask,
    resolve_mask,
)
from modelregistry.domain.validation import Violations, check_version_content


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Stage, Stage)))
def test_nothing_returns_to_development_and_no_move_is_a_no_op(
    current: Stage, target: Stage
) -> None:
    allowed = target != current and target != Stage.DEVELOPMENT
    if allowed:
        lifecycle.check_move("models/m/versions/1", current, target)
    else:
        with pytest.raises(FailedPrecondition) as caught:
            lifecycle.check_move("models/m/versions/1", current, target)
        assert caught.value.violations


@pytest.mark.parametrize(
    ("current", "offered", "preselected"),
    [
        (Stage.DEVELOPMENT, [Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED], Stage.STAGING),
        (Stage.STAGING, [Stage.PRODUCTION, Stage.ARCHIVED], Stage.PRODUCTION),
        (Stage.PRODUCTION, [Stage.STAGING, Stage.ARCHIVED], Stage.ARCHIVED),
        (Stage.ARCHIVED, [Stage.STAGING, Stage.PRODUCTION], Stage.STAGING),
    ],
)
def test_the_moves_offered_are_the_allowed_ones_and_the_next_is_one_of_them(
    current: Stage, offered: list[Stage], preselected: Stage
) -> None:
    assert lifecycle.allowed_targets(current) == offered
    assert lifecycle.natural_next(current) == preselected
    for target in offered:
        lifecycle.check_move("models/m/versions/1", current, target)  # never refused


def test_mask_star_means_every_updatable_field() -> None:
    assert resolve_mask(["*"], VERSION_UPDATABLE, VERSION_OUTPUT_ONLY) == VERSION_UPDATABLE


@pytest.mark.parametrize("paths", [[], ["stage"], ["etag"], ["nope"], ["metrics", "aliases"]])
def test_masks_naming_nothing_or_unknown_or_output_only_fields_are_refused(
    paths: list[str],
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_mask(paths, VERSION_UPDATABLE, VERSION_OUTPUT_ONLY)
    assert caught.value.violations[0].field == "update_mask"


def test_apply_mask_replaces_only_named_fields() -> None:
    current = VersionContent(description="old", metrics={"a": 1.0}, labels={"k": "v"})
    incoming = VersionContent(description="new", metrics={}, labels={"x": "y"})
    merged = apply_mask(current, incoming, ("description", "metrics"))
    assert (merged.description, merged.metrics, merged.labels) == ("new", {}, {"k": "v"})
    assert current.description == "old"


def _violations(content: VersionContent) -> list[str]:
    out = Violations()
    check_version_content(content, "model_version", out)
    return [v.field for v in out.items]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (VersionContent(metrics={"acc": math.nan}), "model_version.metrics['acc']"),
        (VersionContent(metrics={"acc": -math.inf}), "model_version.metrics['acc']"),
        (VersionContent(metrics={"9lives": 1.0}), "model_version.metrics['9lives']"),
        (VersionContent(parameters={"p": "x" * 4097}), "model_version.parameters['p']"),
        (VersionContent(labels={"a b": "a"}), "model_version.labels['a b']"),
        (VersionContent(description="x" * 8193), "model_version.description"),
        (
            VersionContent(input_schema=[SchemaField("x", "")]),
            "model_version.input_schema.fields[0].dtype",
        ),
        (
            VersionContent(output_schema=[SchemaField("x", "FLOAT32", (0,))]),
            "model_version.output_schema.fields[0].shape",
        ),
        (
            VersionContent(input_schema=[SchemaField("x", "INT8"), SchemaField("x", "INT8")]),
            "model_version.input_schema.fields[1].name",
        ),
        (
            VersionContent(lineage=Lineage(run_id="r" * 257)),
            "model_version.lineage.run_id",
        ),
    ],
)
def test_limits_name_the_field_at_fault(content: VersionContent, field: str) -> None:
    assert _violations(content) == [field]


def test_content_within_limits_passes() -> None:
    content = VersionContent(
        description="fine-tuned",
        metrics={"eval/accuracy": 0.9, "_loss": 0.1},
        parameters={"optimizer.lr": "3e-4"},
        input_schema=[SchemaField("tokens", "INT64", (-1, 2048))],
        labels={"team": "nlp"},
    )
    assert _violations(content) == []


def _version(number: int, content: VersionContent) -> ModelVersion:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ModelVersion(
        id=number, model="m", version=number, content=content, stage=Stage.DEVELOPMENT,
        status=VersionStatus.READY, aliases=[], created_by="t", revision=1,
        create_time=now, update_time=now,
    )  # fmt: skip


def test_comparison_reports_deltas_differing_params_schema_changes_and_lineage() -> None:
    base = _version(
        1,
        VersionContent(
            metrics={"acc": 0.8, "loss": 0.5},
            parameters={"lr": "1e-3", "epochs": "3"},
            input_schema=[SchemaField("x", "FLOAT32", (-1, 3)), SchemaField("old", "INT8")],
            lineage=Lineage(source_commit="abc"),
        ),
    )
    other = _version(
        2,
        VersionContent(
            metrics={"acc": 0.9},
            parameters={"lr": "1e-4", "epochs": "3"},
            input_schema=[SchemaField("x", "FLOAT16", (-1, 3)), SchemaField("new", "INT8")],
            lineage=Lineage(source_commit="def"),
        ),
    )
    result = compare([base, other])
    acc = result.metrics["acc"]
    assert acc[1].present
    assert acc[1].delta_from_baseline == pytest.approx(0.1)
    assert result.metrics["loss"][1].present is False
    assert list(result.parameters) == ["lr"]
    changes = {(c.field, c.kind) for c in result.schema_changes}
    assert changes == {("x", "DTYPE_CHANGED"), ("old", "REMOVED"), ("new", "ADDED")}
    assert result.lineage_differences == ["source.commit"]
