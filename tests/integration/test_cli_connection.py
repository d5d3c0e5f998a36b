"""The connection options go before the verb or after it, and after it they win.

`modelreg --target X models list` and `modelreg models list --target X` both work; a value
typed after the verb overrides the one before it; one only read from the environment does not
override what was typed. Run against a real server, in CliRunner (in a worker thread so the
server on the test's event loop keeps serving).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from modelregistry.cli.errors import EXIT_DENIED, EXIT_UNAVAILABLE
from modelregistry.cli.main import app

NOWHERE = "127.0.0.1:1"  # nothing listens on port 1


async def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # A None value in `env` unsets that variable for the command.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_target_and_json_before_the_verb(registry_target: str) -> None:
    created = await run("--target", registry_target, "--json", "models", "create", "before")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["name"] == "models/before"

    listed = await run("--target", registry_target, "models", "list")
    assert listed.exit_code == 0, listed.output
    assert "before" in listed.stdout
    assert not listed.stdout.lstrip().startswith("{")  # no --json anywhere: a table


async def test_after_the_verb_wins_over_before_it(registry_target: str) -> None:
    await run("models", "create", "either", "--target", registry_target)

    got = await run(
        "--target", NOWHERE, "models", "get", "either", "--target", registry_target, "--json"
    )
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["name"] == "models/either"

    missed = await run(
        "--target", registry_target, "models", "get", "either", "--target", NOWHERE,
        "--timeout", "5",
    )  # fmt: skip
    assert missed.exit_code == EXIT_UNAVAILABLE, missed.output
    assert NOWHERE in missed.stderr


async def test_a_typed_token_beats_the_environment_on_either_side(
    registry_target: str, admin_token: str
) -> None:
    # $MODELREG_TOKEN holds the admin token (the fixture sets it); a token typed before the
    # verb must not lose to the verb's own reading of that variable.
    wrong = await run("--token", "not-a-token", "whoami", "--target", registry_target)
    assert wrong.exit_code == EXIT_DENIED, wrong.output

    right = await run(
        "--token", "not-a-token", "whoami", "--token", admin_token,
        "--target", registry_target, "--json",
    )  # fmt: skip
    assert right.exit_code == 0, right.output
    assert json.loads(right.stdout)["role"] == "ROLE_ADMIN"


async def test_the_environment_does_not_override_a_target_typed_before_the_verb(
    registry_target: str,
) -> None:
    await run("models", "create", "by-env", "--target", registry_target)
    got = await run(
        "--target", registry_target, "models", "get", "by-env", env={"MODELREG_TARGET": NOWHERE}
    )
    assert got.exit_code == 0, got.output
    assert "models/by-env" in got.stdout


async def test_nested_groups_and_list_verbs_take_the_options_before_the_verb(
    registry_target: str,
) -> None:
    t = registry_target
    await run("--target", t, "models", "create", "nested")
    await run("--target", t, "versions", "create", "nested")
    alias = await run("--target", t, "--json", "versions", "alias", "set", "nested/1", "champion")
    assert alias.exit_code == 0, alias.output
    assert json.loads(alias.stdout)["aliases"] == ["champion"]

    history = await run("--target", t, "--json", "versions", "alias", "history", "nested")
    assert history.exit_code == 0, history.output
    assert [c["alias"] for c in json.loads(history.stdout)["aliasChanges"]] == ["champion"]


async def test_no_token_anywhere_says_where_the_cli_looked(
    registry_target: str, admin_token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new user's second shell: no --token, no $MODELREG_TOKEN, and a directory without the
    # .modelreg/ that `modelreg dev` made elsewhere.
    monkeypatch.chdir(tmp_path)
    missed = await run("models", "list", "--target", registry_target, env={"MODELREG_TOKEN": None})
    assert missed.exit_code == EXIT_DENIED, missed.output
    line = missed.stderr.strip()
    assert "\n" not in line
    assert line.startswith("error: UNAUTHENTICATED:")
    assert "no token was sent" in line
    assert "--token" in line
    assert "$MODELREG_TOKEN" in line
    assert str(tmp_path / ".modelreg" / "admin-token") in line

    # With the dev token file where it looked, the same command works.
    (tmp_path / ".modelreg").mkdir()
    (tmp_path / ".modelreg" / "admin-token").write_text(admin_token + "\n")
    listed = await run("models", "list", "--target", registry_target, env={"MODELREG_TOKEN": None})
    assert listed.exit_code == 0, listed.output


async def test_a_refused_token_is_not_called_missing(registry_target: str) -> None:
    wrong = await run("--token", "not-a-token", "models", "list", "--target", registry_target)
    assert wrong.exit_code == EXIT_DENIED, wrong.output
    assert "no token was sent" not in wrong.stderr
