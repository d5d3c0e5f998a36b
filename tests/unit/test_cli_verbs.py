"""Which verbs take the connection options, and the old name of `bootstrap-token`; no server."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from modelregistry.cli.main import app

CONNECTION_OPTIONS = {"--target", "--timeout", "--token", "--json", "--tls-ca", "--tls-cert"}
PAGING_OPTIONS = {"--page-size", "--page-token", "--all"}
# Commands that run the server side or talk to PostgreSQL directly: no registry connection.
SERVER_SIDE = {"serve", "migrate", "dev", "gc", "bootstrap-token", "token"}

runner = CliRunner()


def _client_verbs() -> dict[str, set[str]]:
    """Every client verb's full name and the options it takes after its name."""
    root = typer.main.get_command(app)
    found: dict[str, set[str]] = {}

    def walk(command: object, path: str) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            params = getattr(command, "params", [])
            found[path] = {opt for p in params for opt in getattr(p, "opts", [])}
            return
        for name, sub in subcommands.items():
            if not path and name in SERVER_SIDE:
                continue
            walk(sub, f"{path} {name}".strip())

    walk(root, "")
    return found


def test_every_client_verb_takes_the_connection_options_after_its_name() -> None:
    verbs = _client_verbs()
    assert {"models list", "versions alias set", "upload", "whoami", "history", "approve"} <= set(
        verbs
    )
    missing = {verb: CONNECTION_OPTIONS - opts for verb, opts in verbs.items()}
    assert {verb: gap for verb, gap in missing.items() if gap} == {}


def test_every_list_verb_pages() -> None:
    lists = {
        verb: opts for verb, opts in _client_verbs().items() if verb.endswith(("list", "history"))
    }
    assert len(lists) == 13
    assert {verb for verb, opts in lists.items() if not opts >= PAGING_OPTIONS} == set()


def test_the_root_command_takes_them_before_any_verb() -> None:
    root = typer.main.get_command(app)
    assert {opt for p in root.params for opt in p.opts} >= CONNECTION_OPTIONS


def test_a_certificate_without_its_key_after_the_verb_is_a_usage_error(tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    result = runner.invoke(
        app, ["models", "list", "--target", "127.0.0.1:1", "--tls-cert", str(pem)]
    )
    assert result.exit_code == 2, result.output
    assert "--tls-key" in result.output


def test_the_bootstrap_command_is_listed_and_its_old_name_is_hidden() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    panel = result.stdout.split("Commands", 1)[1]
    commands = re.findall(r"^\W*([a-z][a-z-]*)\s", panel, re.M)
    assert "bootstrap-token" in commands
    assert "tokens" in commands
    assert "token" not in commands


def test_the_old_name_still_runs_and_says_the_new_one() -> None:
    # Without MODELREG_DATABASE_URL both names stop at the same configuration error; only
    # the old one adds a note on stderr (stdout, where a secret would go, stays clean).
    env = {"MODELREG_DATABASE_URL": ""}
    old = runner.invoke(app, ["token", "revoke", "some-id"], env=env)
    new = runner.invoke(app, ["bootstrap-token", "revoke", "some-id"], env=env)
    assert old.exit_code == new.exit_code == 2, old.output
    assert old.stdout == new.stdout == ""
    assert "`modelreg bootstrap-token`" in old.stderr
    assert "bootstrap-token" not in new.stderr
    assert old.stderr.endswith(new.stderr)
