"""Resource names: every accepted name round-trips; malformed ones are INVALID_ARGUMENT."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.names import (
    MODEL_ID_PATTERN,
    artifact_name,
    parse_artifact_name,
    parse_model_name,
    parse_version_name,
    validate_alias,
    version_name,
)

model_ids = st.from_regex(MODEL_ID_PATTERN, fullmatch=True)
aliases = st.from_regex(r"[a-z][a-z0-9_-]{0,62}", fullmatch=True).filter(lambda a: a != "latest")


@given(model_ids, st.integers(min_value=1, max_value=2**40))
def test_version_names_round_trip(model_id: str, number: int) -> None:
    ref = parse_version_name(version_name(model_id, number), "name")
    assert (ref.model, ref.number, ref.alias) == (model_id, number, None)


@given(model_ids, aliases)
def test_aliases_never_look_like_numbers(model_id: str, alias: str) -> None:
    ref = parse_version_name(version_name(model_id, alias), "name")
    assert (ref.number, ref.alias) == (None, alias)
    assert validate_alias(alias, "alias") == alias


@given(st.text(max_size=80))
def test_any_text_is_either_a_model_name_or_invalid_argument(text: str) -> None:
    try:
        model_id = parse_model_name(text, "name")
    except InvalidArgument as error:
        assert error.violations[0].field == "name"  # noqa: PT017
    else:
        assert text == f"models/{model_id}"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "models/",
        "models/UPPER",
        "models/a/b",
        "model/a",
        "models/-a",
        "models/a-",
        "models/" + "a" * 64,
        "models/a b",
        "models/a\x00",
        "models/abc\n",
    ],
)
def test_malformed_model_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_model_name(name, "name")


@pytest.mark.parametrize(
    "name",
    [
        "models/a/versions/0",
        "models/a/versions/-1",
        "models/a/versions/01",
        "models/a/versions/",
        "models/a/versions/Champion",
        "models/a/versions/1x",
        "models/a/versions/9" + "9" * 30,
        "models/a/version/1",
        "models/a/versions/1/extra",
        "models/a/versions/-",
    ],
)
def test_malformed_version_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_version_name(name, "name")


@pytest.mark.parametrize(
    "alias", ["latest", "1abc", "Champion", "", "a" * 64, "with space", "champion\n"]
)
def test_bad_aliases(alias: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_alias(alias, "alias")


path_segments = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(
    lambda segment: segment not in (".", "..")
)
paths = st.lists(path_segments, min_size=1, max_size=4).map("/".join)


@given(model_ids, st.integers(min_value=1, max_value=2**40), paths)
def test_artifact_names_round_trip(model_id: str, number: int, path: str) -> None:
    ref, parsed_path = parse_artifact_name(artifact_name(model_id, number, path), "name")
    assert (ref.model, ref.number, parsed_path) == (model_id, number, path)


@pytest.mark.parametrize(
    "name",
    [
        "models/m/versions/1",
        "models/m/versions/1/artifacts/",
        "models/m/versions/1/artifacts//abs",
        "models/m/versions/1/artifacts/a/../b",
        "models/m/artifacts/a",
    ],
)
def test_malformed_artifact_names_are_invalid_argument(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_artifact_name(name, "name")
    assert caught.value.violations[0].field == "name"


@pytest.mark.parametrize("length", [200, 20_000])
def test_a_long_rejected_name_is_echoed_by_its_start(length: int) -> None:
    name = "models/" + "x" * length + "/"
    with pytest.raises(InvalidArgument) as caught:
        parse_model_name(name, "name")
    message = caught.value.message
    assert "'models/xxxx" in message
    assert f"({len(name):,} characters)" in message
    assert len(message) < 200
