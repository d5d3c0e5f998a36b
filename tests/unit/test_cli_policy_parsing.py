"""`modelreg policy set --metric`, `history --at` and the history filter options: pure parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer

from modelregistry.cli.history import history_filter, parse_time
from modelregistry.cli.policy import parse_metric_requirement, requirement_text
from modelregistry.v1 import policy_pb2, registry_service_pb2


@pytest.mark.parametrize(
    ("raw", "metric", "comparator", "threshold"),
    [
        ("accuracy>=0.9", "accuracy", policy_pb2.COMPARATOR_GREATER_OR_EQUAL, 0.9),
        ("loss<0.2", "loss", policy_pb2.COMPARATOR_LESS, 0.2),
        (" eval/f1 > 0.75 ", "eval/f1", policy_pb2.COMPARATOR_GREATER, 0.75),
        ("latency_ms<=120", "latency_ms", policy_pb2.COMPARATOR_LESS_OR_EQUAL, 120.0),
        ("delta>=-1e-3", "delta", policy_pb2.COMPARATOR_GREATER_OR_EQUAL, -0.001),
    ],
)
def test_metric_specs(raw: str, metric: str, comparator: int, threshold: float) -> None:
    parsed = parse_metric_requirement(raw)
    assert (parsed.metric, parsed.comparator, parsed.threshold) == (metric, comparator, threshold)


@pytest.mark.parametrize(
    "raw",
    ["accuracy", "accuracy=0.9", "accuracy=>0.9", ">=0.9", "accuracy>=", "accuracy>=high",
     "accuracy>=nan", "accuracy>=inf", "accuracy >= 0.9 extra", "a<b<c", ""],
)  # fmt: skip
def test_bad_metric_specs_are_usage_errors(raw: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_metric_requirement(raw)


def test_requirement_text_reads_back() -> None:
    for raw in ("accuracy >= 0.9", "loss < 0.2", "x <= 120", "y > 0.123456789"):
        assert requirement_text(parse_metric_requirement(raw)) == raw


def test_times_without_an_offset_are_utc() -> None:
    assert parse_time("2024-05-01T12:00:00Z").ToDatetime(tzinfo=UTC) == datetime(
        2024, 5, 1, 12, tzinfo=UTC
    )
    assert parse_time("2024-05-01 12:00").ToDatetime(tzinfo=UTC) == datetime(
        2024, 5, 1, 12, tzinfo=UTC
    )
    assert parse_time("2024-05-01T14:00:00.25+02:00").ToDatetime(tzinfo=UTC) == datetime(
        2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC
    )
    with pytest.raises(typer.BadParameter):
        parse_time("yesterday")


def test_history_filter_takes_at_most_one_holding() -> None:
    rs = registry_service_pb2
    assert history_filter(None, None, None) == (rs.HOLDING_KIND_UNSPECIFIED, "")
    assert history_filter("prod", None, None) == (rs.HOLDING_KIND_STAGE, "PRODUCTION")
    assert history_filter(None, "champion", None) == (rs.HOLDING_KIND_ALIAS, "champion")
    assert history_filter(None, None, "prod-eu") == (rs.HOLDING_KIND_DEPLOYMENT, "prod-eu")
    with pytest.raises(typer.BadParameter):
        history_filter("production", "champion", None)
    with pytest.raises(typer.BadParameter):
        history_filter("nowhere", None, None)
