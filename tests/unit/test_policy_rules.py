"""Promotion policies: the limits of a policy and the evaluation that lists every unmet
condition; the filter rules of ListModelHistory."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain import history as dh
from modelregistry.domain import names
from modelregistry.domain import policy as dp
from modelregistry.domain.collaboration import Flag, FlagSeverity, FlagState
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.validation import Violations

VERSION = "models/m/versions/3"
GE, GT, LE, LT = (
    dp.Comparator.GREATER_OR_EQUAL,
    dp.Comparator.GREATER,
    dp.Comparator.LESS_OR_EQUAL,
    dp.Comparator.LESS,
)


def policy(**rules: Any) -> dp.PromotionPolicy:
    return dp.PromotionPolicy(model="m", model_row_id=7, rules=dp.PolicyRules(**rules))


def open_flag(flag_id: int, reason: str = "drifts") -> Flag:
    return Flag(
        id=flag_id,
        model="m",
        version=3,
        state=FlagState.OPEN,
        severity=FlagSeverity.HIGH,
        reason=reason,
        raised_by="bob",
        create_time=datetime(2024, 1, 1, tzinfo=UTC),
        resolved_by="",
        resolution="",
        resolve_time=None,
    )


def violations_of(rules: dp.PolicyRules) -> list[str]:
    out = Violations()
    dp.check_rules(rules, "promotion_policy", out)
    return [v.field for v in out.items]


# -- evaluation -----------------------------------------------------------------------------


def test_the_default_policy_blocks_only_on_open_flags() -> None:
    default = dp.PromotionPolicy(model="m", model_row_id=7)
    assert dp.evaluate(default, VERSION, {}, [], []) == []
    unmet = dp.evaluate(default, VERSION, {}, [], [open_flag(4, "leaks PII")])
    assert [(u.type, u.subject, u.description) for u in unmet] == [
        ("FLAG", "models/m/versions/3/flags/4", "HIGH: leaks PII")
    ]
    assert default.etag == "7-0"
    assert default.name == "models/m/promotionPolicy"


def test_every_unmet_condition_is_listed_in_policy_order() -> None:
    strict = policy(
        required_metrics=(
            dp.MetricRequirement("accuracy", GE, 0.9),
            dp.MetricRequirement("loss", LT, 0.2),
            dp.MetricRequirement("latency_ms", LE, 50.0),
        ),
        required_approvals=2,
    )
    unmet = dp.evaluate(
        strict, VERSION, {"accuracy": 0.85, "latency_ms": 50.0}, ["alice"], [open_flag(9)]
    )
    assert [(u.type, u.subject, u.description) for u in unmet] == [
        ("METRIC", "accuracy", "accuracy is 0.85, needs >= 0.9"),
        ("METRIC", "loss", "loss is missing, needs < 0.2"),
        ("APPROVALS", VERSION, "has 1 of 2 approvals"),
        ("FLAG", "models/m/versions/3/flags/9", "HIGH: drifts"),
    ]


@pytest.mark.parametrize(
    ("comparator", "value", "met"),
    [
        (GE, 0.9, True),
        (GE, 0.8999, False),
        (GT, 0.9, False),
        (GT, 0.90001, True),
        (LE, 0.9, True),
        (LE, 0.90001, False),
        (LT, 0.9, False),
        (LT, -1.0, True),
    ],
)
def test_comparators_include_or_exclude_the_threshold(
    comparator: dp.Comparator, value: float, met: bool
) -> None:
    rule = policy(required_metrics=(dp.MetricRequirement("score", comparator, 0.9),))
    assert (dp.evaluate(rule, VERSION, {"score": value}, [], []) == []) is met


def test_approvals_count_distinct_principals() -> None:
    two = policy(required_approvals=2)
    assert [u.type for u in dp.evaluate(two, VERSION, {}, ["alice", "alice"], [])] == ["APPROVALS"]
    assert dp.evaluate(two, VERSION, {}, ["alice", "bob"], []) == []


def test_allow_open_flags_ignores_them() -> None:
    lenient = policy(allow_open_flags=True)
    assert dp.evaluate(lenient, VERSION, {}, [], [open_flag(1), open_flag(2)]) == []


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(list(dp.Comparator)),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=8,
    ),
    st.integers(0, 4),
    st.sets(st.sampled_from(["p1", "p2", "p3"])),
    st.integers(0, 3),
)
def test_evaluation_lists_exactly_the_failing_conditions(
    metrics: dict[str, float],
    requirements: list[tuple[str, dp.Comparator, float]],
    needed: int,
    approvers: set[str],
    flag_count: int,
) -> None:
    rules = tuple(dp.MetricRequirement(m, c, t) for m, c, t in requirements)
    flags = [open_flag(i + 1) for i in range(flag_count)]
    unmet = dp.evaluate(
        policy(required_metrics=rules, required_approvals=needed),
        VERSION,
        metrics,
        sorted(approvers),
        flags,
    )
    failing = [r for r in rules if r.metric not in metrics or not r.met_by(metrics[r.metric])]
    assert [u.subject for u in unmet if u.type == "METRIC"] == [r.metric for r in failing]
    assert any(u.type == "APPROVALS" for u in unmet) is (len(approvers) < needed)
    assert sum(u.type == "FLAG" for u in unmet) == flag_count
    assert len(unmet) == len(failing) + (len(approvers) < needed) + flag_count


def test_the_refusal_lists_all_conditions_and_keeps_the_flag_reason() -> None:
    unmet = dp.evaluate(
        policy(required_metrics=(dp.MetricRequirement("accuracy", GE, 0.9),)),
        VERSION,
        {},
        [],
        [open_flag(1)],
    )
    error = dp.policy_not_met(VERSION, "move to PRODUCTION", unmet)
    assert error.reason == "PROMOTION_POLICY_NOT_MET"
    assert error.violations == unmet
    assert "accuracy is missing, needs >= 0.9" in error.message
    assert "1 open flag(s)" in error.message
    flags_only = dp.policy_not_met(VERSION, "move to PRODUCTION", unmet[1:])
    assert flags_only.reason == "OPEN_FLAGS"


# -- limits ---------------------------------------------------------------------------------


def test_a_valid_policy_has_no_violations() -> None:
    rules = dp.PolicyRules(
        required_metrics=(
            dp.MetricRequirement("eval/accuracy", GE, 0.9),
            dp.MetricRequirement("eval/accuracy", LE, 0.999),
        ),
        required_approvals=dp.MAX_REQUIRED_APPROVALS,
        protected_aliases=("production", "champion"),
    )
    assert violations_of(rules) == []


def test_every_violation_is_reported_with_its_field() -> None:
    rules = dp.PolicyRules(
        required_metrics=(
            dp.MetricRequirement("ok", GE, 1.0),
            dp.MetricRequirement("9bad key", GE, math.inf),
        ),
        required_approvals=33,
        protected_aliases=("champion", "latest", "Bad", "champion"),
    )
    assert violations_of(rules) == [
        "promotion_policy.required_metrics[1].metric",
        "promotion_policy.required_metrics[1].threshold",
        "promotion_policy.required_approvals",
        "promotion_policy.protected_aliases[1]",
        "promotion_policy.protected_aliases[2]",
        "promotion_policy.protected_aliases[3]",
    ]


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        (
            dp.PolicyRules(
                required_metrics=tuple(
                    dp.MetricRequirement(f"m{i}", GE, 0.0)
                    for i in range(dp.MAX_REQUIRED_METRICS + 1)
                )
            ),
            "promotion_policy.required_metrics",
        ),
        (dp.PolicyRules(required_approvals=-1), "promotion_policy.required_approvals"),
        (
            dp.PolicyRules(
                protected_aliases=tuple(f"a{i}" for i in range(dp.MAX_PROTECTED_ALIASES + 1))
            ),
            "promotion_policy.protected_aliases",
        ),
        (
            dp.PolicyRules(required_metrics=(dp.MetricRequirement("x", GE, math.nan),)),
            "promotion_policy.required_metrics[0].threshold",
        ),
    ],
)
def test_limits(rules: dp.PolicyRules, field: str) -> None:
    assert violations_of(rules) == [field]


def test_approval_comment_limit() -> None:
    out = Violations()
    dp.check_approval_comment("x" * dp.MAX_APPROVAL_COMMENT_BYTES, "c", out)
    assert out.items == []
    dp.check_approval_comment("x" * (dp.MAX_APPROVAL_COMMENT_BYTES + 1), "c", out)
    dp.check_approval_comment("a\x00b", "c", out)
    assert [v.field for v in out.items] == ["c", "c"]


@pytest.mark.parametrize(
    "name",
    [
        "models/m",
        "models/m/policy",
        "models/m/promotionPolicy/x",
        "models//promotionPolicy",
        "promotionPolicy",
        "models/M/promotionPolicy",
    ],
)
def test_malformed_policy_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        names.parse_policy_name(name, "name")
    assert [v.field for v in refused.value.violations] == ["name"]


def test_policy_names_round_trip() -> None:
    assert names.parse_policy_name(names.policy_name("llama-ft"), "name") == "llama-ft"


# -- history filters ------------------------------------------------------------------------


def test_history_key_needs_a_kind_and_must_fit_it() -> None:
    with pytest.raises(InvalidArgument) as no_kind:
        dh.check_query(None, "PRODUCTION", None)
    assert [v.field for v in no_kind.value.violations] == ["key"]
    for kind, key in (
        (dh.HoldingKind.STAGE, "production"),
        (dh.HoldingKind.STAGE, "STAGE_PRODUCTION"),
        (dh.HoldingKind.ALIAS, "latest"),
        (dh.HoldingKind.ALIAS, "9lives"),
        (dh.HoldingKind.DEPLOYMENT, "Prod EU"),
    ):
        with pytest.raises(InvalidArgument):
            dh.check_query(kind, key, None)
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    assert dh.check_query(dh.HoldingKind.STAGE, "PRODUCTION", moment) == dh.HistoryQuery(
        dh.HoldingKind.STAGE, "PRODUCTION", moment
    )
    assert dh.check_query(dh.HoldingKind.ALIAS, "", None) == dh.HistoryQuery(dh.HoldingKind.ALIAS)
