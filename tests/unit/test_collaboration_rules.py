"""Names and limits of comments, flags and deployments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain import collaboration as co
from modelregistry.domain import names
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.names import MODEL_ID_PATTERN, VersionRef, parse_version_child_name
from modelregistry.domain.validation import Violations

model_ids = st.from_regex(MODEL_ID_PATTERN, fullmatch=True)
collections = st.sampled_from([names.COMMENTS, names.FLAGS, names.DEPLOYMENTS])


@given(model_ids, st.integers(1, 2**40), collections, st.integers(1, 2**60))
def test_child_names_round_trip(model_id: str, version: int, collection: str, child: int) -> None:
    name = names.version_child_name(model_id, version, collection, child)
    assert parse_version_child_name(name, "name", collection) == (
        VersionRef(model_id, number=version),
        child,
    )


def test_a_child_may_be_named_through_an_alias() -> None:
    assert parse_version_child_name("models/m/versions/champion/flags/3", "name", names.FLAGS) == (
        VersionRef("m", alias="champion"),
        3,
    )


@pytest.mark.parametrize(
    "name",
    [
        "",
        "models/m/versions/1/comments/",
        "models/m/versions/1/comments/0",
        "models/m/versions/1/comments/007",
        "models/m/versions/1/comments/-1",
        "models/m/versions/1/comments/x",
        "models/m/versions/1/flags/1",
        "models/m/comments/1",
        "models/m/versions/1/comments/1/comments/2",
        "models/M/versions/1/comments/1",
        "models/m/versions/1/comments/\uff11",  # a non-ASCII digit
    ],
)
def test_malformed_child_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_version_child_name(name, "name", names.COMMENTS)
    assert [v.field for v in refused.value.violations] == ["name"]


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (co.check_comment_body, "x", True),
        (co.check_comment_body, "x" * co.MAX_COMMENT_BYTES, True),
        (co.check_comment_body, "x" * (co.MAX_COMMENT_BYTES + 1), False),
        (co.check_comment_body, "", False),
        (co.check_flag_reason, "é" * (co.MAX_FLAG_REASON_BYTES // 2), True),
        (co.check_flag_reason, "é" * (co.MAX_FLAG_REASON_BYTES // 2) + "x", False),
        (co.check_resolution, "a\x00", False),
        (co.check_environment, "prod-eu_2", True),
        (co.check_environment, "e" * 63, True),
        (co.check_environment, "e" * 64, False),
        (co.check_environment, "2prod", False),
        (co.check_environment, "Prod", False),
        (co.check_endpoint, "https://serve.example.com/v1", True),
        (co.check_endpoint, "grpc://10.0.0.1:8500", True),
        (co.check_endpoint, "https://h/" + "p" * (co.MAX_ENDPOINT_CHARS - 10), True),
        (co.check_endpoint, "https://h/" + "p" * (co.MAX_ENDPOINT_CHARS - 9), False),
        (co.check_endpoint, "serve.example.com", False),
        (co.check_endpoint, "https://h/a b", False),
        (co.check_endpoint, "", False),
    ],
)
def test_limits(check: object, value: str, ok: bool) -> None:
    out = Violations()
    check(value, "field", out)  # type: ignore[operator]
    assert (not out.items) == ok
