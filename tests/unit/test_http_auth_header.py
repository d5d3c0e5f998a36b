"""Which token an HTTP request carries: Bearer, or Basic with the token as password."""

from __future__ import annotations

import base64

import pytest
from starlette.datastructures import Headers

from modelregistry.http.auth import token_from
from modelregistry.http.context import accepted_request_id


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        ("Bearer mr_abc", "mr_abc"),
        ("bearer   mr_abc  ", "mr_abc"),
        (_basic("anyone:mr_abc"), "mr_abc"),
        (_basic(":mr_abc"), "mr_abc"),
        (_basic("oauth2accesstoken:mr:with:colons"), "mr:with:colons"),
        (_basic("user-without-password"), None),
        (_basic("user:"), None),
        ("Basic !!not-base64!!", None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
        ("Bearer ", None),
        ("Token mr_abc", None),
        ("", None),
    ],
)
def test_token_from_authorization(authorization: str, token: str | None) -> None:
    assert token_from(Headers({"authorization": authorization})) == token


def test_no_authorization_header_is_no_token() -> None:
    assert token_from(Headers({})) is None


@pytest.mark.parametrize(
    ("incoming", "accepted"),
    [
        ("ci-run-42", "ci-run-42"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("", None),
        (None, None),
        ("line\nbreak", None),
        ("caf\u00e9", None),
    ],
)
def test_incoming_request_ids_are_echoed_only_when_safe(
    incoming: str | None, accepted: str | None
) -> None:
    assert accepted_request_id(incoming) == accepted
