"""Principal names, token names, token limits and the role check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain import access as da
from modelregistry.domain import names
from modelregistry.domain.access import Access, Role, Token
from modelregistry.domain.errors import InvalidArgument, PermissionDenied
from modelregistry.domain.validation import Violations

PRINCIPAL_CHARS = "abcxyzABCXYZ0189._@:-"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def principal_problems(name: str) -> list[str]:
    out = Violations()
    da.check_principal(name, "token.principal", out)
    return [v.field for v in out.items]


@given(st.text(alphabet=PRINCIPAL_CHARS, min_size=1, max_size=128))
def test_principals_of_the_allowed_characters_are_accepted(name: str) -> None:
    assert principal_problems(name) == []
    assert da.validate_principal(name, "principal") == name


@given(
    st.text(alphabet=PRINCIPAL_CHARS, max_size=20),
    st.characters().filter(lambda c: c not in PRINCIPAL_CHARS and not c.isalnum()),
    st.text(alphabet=PRINCIPAL_CHARS, max_size=20),
)
def test_any_other_character_is_refused(before: str, bad: str, after: str) -> None:
    assert principal_problems(before + bad + after) == ["token.principal"]


@pytest.mark.parametrize(
    "name",
    ["", "x" * 129, "ci pipeline", "ci/pipeline", "ci\n", "é", "ci\x00", "a,b", "*"],
    ids=repr,
)
def test_malformed_principals_are_refused(name: str) -> None:
    assert principal_problems(name) == ["token.principal"]
    with pytest.raises(InvalidArgument) as raised:
        da.validate_principal(name, "principal")
    assert [v.field for v in raised.value.violations] == ["principal"]


def test_the_longest_principal_and_typical_ones_are_accepted() -> None:
    for name in ("x" * 128, "ci-pipeline", "alice@example.com", "svc:trainer.eu-1", "A_B"):
        assert principal_problems(name) == []


def test_descriptions_are_at_most_1024_characters() -> None:
    out = Violations()
    da.check_token_description("é" * 1024, "token.description", out)
    assert out.items == []
    da.check_token_description("x" * 1025, "token.description", out)
    da.check_token_description("nul\x00", "token.description", out)
    assert [v.field for v in out.items] == ["token.description", "token.description"]


def test_an_expiry_must_be_in_the_future() -> None:
    out = Violations()
    da.check_expire_time(NOW + timedelta(seconds=1), NOW, "token.expire_time", out)
    assert out.items == []
    da.check_expire_time(NOW, NOW, "token.expire_time", out)
    da.check_expire_time(NOW - timedelta(days=1), NOW, "token.expire_time", out)
    assert [v.field for v in out.items] == ["token.expire_time", "token.expire_time"]
    assert "2029-12-31T00:00:00Z" in out.items[1].description


@given(st.uuids())
def test_token_names_round_trip(token_id: uuid.UUID) -> None:
    assert names.parse_token_name(names.token_name(str(token_id)), "name") == str(token_id)
    assert names.parse_token_name(f"tokens/{str(token_id).upper()}", "name") == str(token_id)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "tokens/",
        "tokens/abc",
        str(uuid.UUID(int=1)),
        f"token/{uuid.UUID(int=1)}",
        f"tokens/{uuid.UUID(int=1).hex}",
        f"tokens/{{{uuid.UUID(int=1)}}}",
        f"tokens/{uuid.UUID(int=1)}/x",
        f"tokens/{uuid.UUID(int=1)}\n",
    ],
    ids=repr,
)
def test_malformed_token_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        names.parse_token_name(name, "name")
    assert [v.field for v in raised.value.violations] == ["name"]


def test_a_token_is_active_until_it_expires_or_is_revoked() -> None:
    token = Token("id", "ci", "", NOW, NOW + timedelta(days=1), None)
    assert token.state(NOW) == "active"
    assert token.state(NOW + timedelta(days=1)) == "expired"
    revoked = Token("id", "ci", "", NOW, NOW + timedelta(days=1), NOW)
    assert revoked.state(NOW + timedelta(days=2)) == "revoked"
    assert Token("id", "ci", "", NOW, None, None).state(datetime.max.replace(tzinfo=UTC)) == (
        "active"
    )


def test_a_role_on_a_model_is_the_higher_of_the_grant_and_the_role_everywhere() -> None:
    access = Access("ci", Role.APPROVER, {"llama": Role.EDITOR, "bert": Role.ADMIN})
    assert access.role_on("llama") == Role.APPROVER
    assert access.role_on("bert") == Role.ADMIN
    assert access.role_on("other") == Role.APPROVER
    assert access.role_on(None) == Role.APPROVER


def test_permission_denied_names_the_role_needed() -> None:
    access = Access("ci", Role.EDITOR, {"llama": Role.ADMIN})
    da.require(access, Role.ADMIN, "llama", "delete versions")
    with pytest.raises(PermissionDenied) as raised:
        da.require(access, Role.ADMIN, None, "manage tokens")
    assert "'ci' may not manage tokens: that needs the admin role" in str(raised.value)
    assert raised.value.metadata == {"required_role": "admin"}
