"""Pure rules of the MLflow surface: ids derived from MLflow names, and MLflow's search filter
and order_by translated into the registry's filter tree and sort keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.filtering import And, Compare, FieldKind, Like, Not, Op, Or
from modelregistry.domain.names import MODEL_ID_PATTERN, model_id_candidates
from modelregistry.http.mlflow.search import parse_search_filter, parse_search_order


def test_ids_come_from_names_with_a_suffix_for_collisions() -> None:
    assert model_id_candidates("Fraud Detector", 3) == [
        "fraud-detector", "fraud-detector-2", "fraud-detector-3",
    ]  # fmt: skip
    assert model_id_candidates("sk-learn-random-forest-reg-model", 1) == [
        "sk-learn-random-forest-reg-model"
    ]
    assert model_id_candidates("  ***  ", 1) == ["model"]


@given(st.text(min_size=1, max_size=300))
def test_every_derived_id_is_a_valid_model_id(name: str) -> None:
    for candidate in model_id_candidates(name, 12):
        assert MODEL_ID_PATTERN.fullmatch(candidate), candidate


def test_the_clients_prompt_filter_keeps_models_without_the_tag() -> None:
    parsed = parse_search_filter(
        "name LIKE 'fraud%' AND tag.`mlflow.prompt.is_prompt` != 'true'", versions=False
    )
    assert parsed == And(
        (
            Like("display_name", None, FieldKind.STRING, "fraud%", case_insensitive=False),
            Not(Compare("labels", "mlflow.prompt.is_prompt", FieldKind.STRING_MAP, Op.EQ, "true")),
        )
    )


def test_version_filters_translate_run_ids_sources_and_numbers() -> None:
    parsed = parse_search_filter(
        "run_id IN ('a', 'b') AND source_path ILIKE 's3://%' AND version_number >= 2",
        versions=True,
    )
    assert parsed == And(
        (
            Or(
                (
                    Compare("run_id", None, FieldKind.STRING, Op.EQ, "a"),
                    Compare("run_id", None, FieldKind.STRING, Op.EQ, "b"),
                )
            ),
            Like("source", None, FieldKind.STRING, "s3://%", case_insensitive=True),
            Compare("version", None, FieldKind.INTEGER, Op.GE, 2),
        )
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name = 'a' OR name = 'b'", "AND"),
        ("attributes.status = 'READY'", "attributes.status"),
        ("run_id = 'x'", "run_id"),  # models have no run_id
        ("name > 'a'", "name > 'a'"),
        ("tags.k = 3", "tags.k = 3"),
        ("name = 'unterminated", "cannot read"),
    ],
)
def test_unsupported_clauses_are_named(text: str, named: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_search_filter(text, versions=False)
    assert named in refused.value.message


def test_order_by_maps_mlflow_attributes() -> None:
    keys = parse_search_order(["last_updated_timestamp DESC", "name"], versions=True)
    assert [(k.field, k.descending) for k in keys] == [
        ("update_time", True), ("display_name", False), ("version", True),
    ]  # fmt: skip
    with pytest.raises(InvalidArgument):
        parse_search_order(["metrics.x"], versions=False)
