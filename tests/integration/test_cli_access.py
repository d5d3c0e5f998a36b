"""`modelreg tokens|grants|whoami` against a real server, and the DB-direct
`modelreg bootstrap-token` beside them.

CliRunner calls run in a worker thread so that the server on the test's event loop keeps
serving; the capture of a new secret runs the installed console script, as a shell script would.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from integration import helpers
from typer.testing import CliRunner, Result

from modelregistry.cli.main import app

MODELREG = str(Path(sys.executable).with_name("modelreg"))
SECRET = re.compile(r"^mrt_[A-Za-z0-9_-]{40,}$")


async def cli(target: str, *args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, [*args, "--target", target], env=env)


async def cli_json(target: str, *args: str) -> Any:
    result = await cli(target, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def new_secret(target: str, principal: str, *args: str) -> str:
    result = await cli(target, "tokens", "create", principal, *args)
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert SECRET.match(secret), result.stdout
    return secret


async def test_a_script_captures_the_secret_from_stdout_alone(registry_target: str) -> None:
    process = await asyncio.create_subprocess_exec(
        MODELREG, "tokens", "create", "ci-bot", "--description", "nightly",
        "--expires-in-days", "30", "--target", registry_target,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    secret = stdout.decode().removesuffix("\n")
    assert SECRET.match(secret), stdout  # one line, nothing but the secret
    assert "created tokens/" in stderr.decode()
    assert "ci-bot" in stderr.decode()
    assert secret not in stderr.decode()

    caller = await cli_json(registry_target, "whoami", "--token", secret)
    assert caller == {"principal": "ci-bot", "role": "ROLE_VIEWER"}
    listed = await cli(registry_target, "tokens", "list", "--principal", "ci-bot")
    assert listed.exit_code == 0, listed.output
    assert "ci-bot" in listed.stdout
    assert "nightly" in listed.stdout
    assert "active" in listed.stdout
    assert secret not in listed.stdout


async def test_tokens_grants_and_whoami(registry_target: str) -> None:
    t = registry_target
    await cli_json(t, "models", "create", "demo")

    made = await cli_json(t, "tokens", "create", "team-bot", "--description", "team CI")
    assert made["token"]["principal"] == "team-bot"
    assert made["token"]["description"] == "team CI"
    assert "expireTime" not in made["token"]
    assert SECRET.match(made["secret"])
    first_id = made["token"]["name"].removeprefix("tokens/")

    # Grants: on one model, then everywhere; listed by principal then model.
    on_demo = await cli(t, "grants", "set", "team-bot", "editor", "--model", "demo")
    assert on_demo.exit_code == 0, on_demo.output
    assert "team-bot is editor on models/demo" in on_demo.stdout
    held = await cli_json(t, "grants", "set", "team-bot", "ROLE_APPROVER")
    assert held == {"principal": "team-bot", "role": "ROLE_APPROVER"}
    listed = await cli_json(t, "grants", "list", "--principal", "team-bot")
    assert listed["grants"] == [
        {"principal": "team-bot", "role": "ROLE_APPROVER"},
        {"principal": "team-bot", "model": "models/demo", "role": "ROLE_EDITOR"},
    ]
    table = await cli(t, "grants", "list", "--model", "models/demo")
    assert table.exit_code == 0, table.output
    assert "team-bot" in table.stdout
    assert "models/demo" in table.stdout
    assert "editor" in table.stdout
    everyone = await cli(t, "grants", "list")
    assert "everywhere" in everyone.stdout
    assert "test-admin" in everyone.stdout

    # A fresh token sees its roles.
    fresh = await new_secret(t, "team-bot")
    caller = await cli_json(t, "whoami", "--token", fresh)
    assert caller == {
        "principal": "team-bot",
        "role": "ROLE_APPROVER",
        "grants": [{"principal": "team-bot", "model": "models/demo", "role": "ROLE_EDITOR"}],
    }
    human = await cli(t, "whoami", "--token", fresh)
    assert human.exit_code == 0, human.output
    for text in ("team-bot", "approver", "models/demo", "editor"):
        assert text in human.stdout

    # Taking grants away; a second time is NOT_FOUND (exit 3).
    removed = await cli(t, "grants", "delete", "team-bot", "--model", "demo")
    assert removed.exit_code == 0, removed.output
    assert "removed team-bot's grant on models/demo" in removed.stdout
    again = await cli(t, "grants", "delete", "team-bot", "--model", "demo")
    assert again.exit_code == 3, again.output
    assert again.stderr.startswith("error: NOT_FOUND: ")
    reset = await cli(t, "grants", "delete", "team-bot")
    assert reset.exit_code == 0, reset.output
    assert "team-bot is viewer everywhere" in reset.stdout
    assert (await cli(t, "grants", "delete", "team-bot")).exit_code == 3

    # Revoking: by id or by name; a revoked token is listed only with --all-states.
    unused = await cli_json(t, "tokens", "create", "team-bot")
    revoked = await cli(t, "tokens", "revoke", first_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked tokens/{first_id}" in revoked.stdout
    twice = await cli(t, "tokens", "revoke", f"tokens/{first_id}")
    assert twice.exit_code == 5, twice.output
    assert "already revoked" in twice.stderr
    by_name = await cli_json(t, "tokens", "revoke", unused["token"]["name"])
    assert "revokeTime" in by_name
    refused = await cli(t, "whoami", "--token", unused["secret"])  # never used, so not cached
    assert refused.exit_code == 8, refused.output
    assert refused.stderr.startswith("error: UNAUTHENTICATED: ")

    live = await cli_json(t, "tokens", "list", "--principal", "team-bot")
    assert [tok["name"] for tok in live["tokens"]] != []
    assert f"tokens/{first_id}" not in {tok["name"] for tok in live["tokens"]}
    every = await cli_json(t, "tokens", "list", "--principal", "team-bot", "--all-states")
    names = [tok["name"] for tok in every["tokens"]]
    assert names[0] == unused["token"]["name"]  # newest first
    assert f"tokens/{first_id}" in names
    states = await cli(t, "tokens", "list", "--all-states")
    assert "revoked" in states.stdout
    assert made["secret"] not in states.stdout


async def test_tokens_list_pages(registry_target: str) -> None:
    t = registry_target
    for _ in range(3):
        await cli_json(t, "tokens", "create", "pager")
    first = await cli_json(t, "tokens", "list", "--principal", "pager", "--page-size", "2")
    assert len(first["tokens"]) == 2
    rest = await cli_json(
        t, "tokens", "list", "--principal", "pager", "--page-size", "2",
        "--page-token", first["nextPageToken"],
    )  # fmt: skip
    assert len(rest["tokens"]) == 1
    everything = await cli_json(
        t, "tokens", "list", "--principal", "pager", "--page-size", "2", "--all"
    )
    assert [x["name"] for x in everything["tokens"]] == [
        x["name"] for x in first["tokens"] + rest["tokens"]
    ]
    footer = await cli(t, "tokens", "list", "--principal", "pager", "--page-size", "2")
    assert "more with --page-token" in footer.stdout


async def test_usage_errors_refusals_and_exit_codes(registry_target: str) -> None:
    t = registry_target
    bad_role = await cli(t, "grants", "set", "someone", "superuser")
    assert bad_role.exit_code == 2, bad_role.output
    assert "superuser" in bad_role.output
    bad_model = await cli(t, "grants", "set", "someone", "editor", "--model", "a/b/c")
    assert bad_model.exit_code == 2, bad_model.output

    unknown = await cli(t, "grants", "set", "nobody", "editor")
    assert unknown.exit_code == 3, unknown.output
    assert "first token" in unknown.stderr
    bad_name = await cli(t, "tokens", "create", "bad name")
    assert bad_name.exit_code == 6, bad_name.output
    assert "token.principal" in bad_name.stderr
    assert bad_name.stdout == ""
    not_a_token = await cli(t, "tokens", "revoke", "not-a-uuid")
    assert not_a_token.exit_code == 6, not_a_token.output

    viewer = await new_secret(t, "just-a-viewer")
    for args in (
        ("tokens", "list"),
        ("tokens", "create", "intruder"),
        ("grants", "set", "just-a-viewer", "admin"),
        ("grants", "list"),
    ):
        denied = await cli(t, *args, "--token", viewer)
        assert denied.exit_code == 8, (args, denied.output)
        assert denied.stderr.startswith("error: PERMISSION_DENIED: ")
        assert "admin role" in denied.stderr
        assert denied.stdout == ""
    assert (await cli_json(t, "whoami", "--token", viewer))["role"] == "ROLE_VIEWER"


async def test_the_bootstrap_command_still_works_beside_the_api(
    registry_target: str, migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = registry_target
    monkeypatch.setenv("MODELREG_DATABASE_URL", migrated_database_url)
    runner = CliRunner()
    created = await asyncio.to_thread(
        runner.invoke, app, ["bootstrap-token", "create", "ops", "--role", "admin", "--json"]
    )
    assert created.exit_code == 0, created.output
    issued = json.loads(created.stdout)
    assert SECRET.match(issued["token"])

    # The API sees the bootstrap token, and the token works over the API.
    caller = await cli_json(t, "whoami", "--token", issued["token"])
    assert caller == {"principal": "ops", "role": "ROLE_ADMIN"}
    listed = await cli_json(t, "tokens", "list", "--principal", "ops", "--token", issued["token"])
    assert [x["name"] for x in listed["tokens"]] == [f"tokens/{issued['token_id']}"]

    revoke = ["bootstrap-token", "revoke", issued["token_id"]]
    revoked = await asyncio.to_thread(runner.invoke, app, revoke)
    assert revoked.exit_code == 0, revoked.output
    again = await asyncio.to_thread(runner.invoke, app, revoke)
    assert again.exit_code == 3, again.output

    rows = await helpers.audit_rows(migrated_database_url)
    assert [(r["principal"], r["action"]) for r in rows[-2:]] == [
        ("bootstrap", "CreateToken"),
        ("bootstrap", "RevokeToken"),
    ]
    assert issued["token"] not in json.dumps(rows, default=str)
    help_text = await asyncio.to_thread(runner.invoke, app, ["bootstrap-token", "--help"])
    assert "`modelreg tokens`" in " ".join(help_text.stdout.replace("│", " ").split())

    # The old name, `modelreg token`, still works for one release: the same stdout, and a
    # note on stderr naming the new one. (--json may come before the verb, as for any other.)
    old = await asyncio.to_thread(
        runner.invoke, app, ["--json", "token", "create", "legacy-ops", "--role", "admin"]
    )
    assert old.exit_code == 0, old.output
    assert SECRET.match(json.loads(old.stdout)["token"])
    assert "`modelreg bootstrap-token`" in old.stderr
