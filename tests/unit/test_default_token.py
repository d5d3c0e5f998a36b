"""Which token the CLI sends when none is given on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelregistry import client


@pytest.fixture
def dev_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".modelreg").mkdir()
    (tmp_path / ".modelreg" / "admin-token").write_text("mrt_dev-admin\n")
    return "mrt_dev-admin"


def test_the_dev_admin_token_is_used_when_nothing_else_is_given(
    dev_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(client.TOKEN_ENV, raising=False)
    assert client.default_token() == dev_token


def test_a_token_in_the_environment_wins(dev_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(client.TOKEN_ENV, "mrt_viewer")
    assert client.default_token() == "mrt_viewer"


def test_an_empty_token_in_the_environment_never_falls_back_to_the_admin_token(
    dev_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(client.TOKEN_ENV, "")
    assert client.default_token() is None
