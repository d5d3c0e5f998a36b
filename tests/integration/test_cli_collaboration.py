"""`modelreg comments|flags|deployments` against a real server, through typer's CliRunner.

Each call runs in a worker thread so that the server on the test's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from typer.testing import CliRunner, Result

from modelregistry.cli.main import app


async def cli(target: str, *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, [*args, "--target", target])


async def cli_json(target: str, *args: str) -> Any:
    result = await cli(target, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_comments_flags_and_deployments(registry_target: str) -> None:
    t = registry_target
    await cli_json(t, "models", "create", "demo")
    version = await cli_json(t, "versions", "create", "demo")
    assert version["name"] == "models/demo/versions/1"

    # Comments: a thread, listed with the reply under its parent, then deleted bottom-up.
    first = await cli_json(t, "comments", "add", "demo/1", "looks good")
    assert first["name"].startswith("models/demo/versions/1/comments/")
    first_id = first["name"].rsplit("/", 1)[1]
    reply = await cli_json(t, "comments", "add", "demo", "1", "agreed", "--reply-to", first_id)
    assert reply["parentComment"] == first["name"]
    second = await cli_json(t, "comments", "add", "models/demo/versions/1", "one more thing")

    listed = await cli_json(t, "comments", "list", "demo/1", "--all")
    assert [c["name"] for c in listed["comments"]] == [
        first["name"],
        reply["name"],
        second["name"],
    ]
    assert [c["body"] for c in listed["comments"]] == ["looks good", "agreed", "one more thing"]
    threads = await cli(t, "comments", "list", "demo/1")
    assert threads.exit_code == 0, threads.output
    lines = threads.stdout.splitlines()
    parent_line = next(i for i, line in enumerate(lines) if "looks good" in line)
    reply_line = next(i for i, line in enumerate(lines) if "agreed" in line)
    assert reply_line == parent_line + 1
    assert "└" in lines[reply_line]

    edited = await cli_json(t, "comments", "edit", second["name"], "one more thing, edited")
    assert edited["body"] == "one more thing, edited"
    assert "updateTime" in edited

    busy = await cli(t, "comments", "delete", first["name"])
    assert busy.exit_code == 5, busy.output  # FAILED_PRECONDITION: it has a reply
    assert busy.stderr.startswith("error: FAILED_PRECONDITION: ")
    deleted = await cli(t, "comments", "delete", reply["name"])
    assert deleted.exit_code == 0, deleted.output
    assert f"deleted {reply['name']}" in deleted.stdout
    listed = await cli_json(t, "comments", "list", "demo/1")
    assert [c["name"] for c in listed["comments"]] == [first["name"], second["name"]]

    # Flags: raise, list by state, resolve.
    flag = await cli_json(
        t, "flags", "raise", "demo/1", "--severity", "high", "--reason", "drifts on EU data"
    )
    assert flag["state"] == "FLAG_STATE_OPEN"
    assert flag["severity"] == "FLAG_SEVERITY_HIGH"
    open_flags = await cli_json(t, "flags", "list", "demo/1", "--state", "open")
    assert [f["name"] for f in open_flags["flags"]] == [flag["name"]]
    blocked = await cli(t, "versions", "stage", "demo/1", "production")
    assert blocked.exit_code == 5, blocked.output

    short_ref = "demo/1/" + flag["name"].rsplit("/", 1)[1]
    resolved = await cli_json(
        t, "flags", "resolve", short_ref, "--resolution", "retrained with EU data"
    )
    assert resolved["state"] == "FLAG_STATE_RESOLVED"
    assert resolved["resolution"] == "retrained with EU data"
    assert (await cli_json(t, "flags", "list", "demo/1", "--state", "open")) == {}
    all_flags = await cli_json(t, "flags", "list", "demo/1")
    assert [f["state"] for f in all_flags["flags"]] == ["FLAG_STATE_RESOLVED"]
    again = await cli(t, "flags", "resolve", flag["name"], "--resolution", "twice")
    assert again.exit_code == 5, again.output
    table = await cli(t, "flags", "list", "demo/1")
    assert table.exit_code == 0, table.output
    assert "RESOLVED" in table.stdout
    assert "HIGH" in table.stdout

    # Deployments: record, list, change status.
    deployment = await cli_json(
        t, "deployments", "record", "demo/1", "--environment", "prod-eu",
        "--endpoint", "https://serving.example.com/v1/models/demo",
    )  # fmt: skip
    assert deployment["status"] == "DEPLOYMENT_STATUS_PENDING"
    history = await cli_json(t, "deployments", "list", "demo", "1")
    assert [d["name"] for d in history["deployments"]] == [deployment["name"]]
    assert history["deployments"][0]["environment"] == "prod-eu"
    active = await cli_json(t, "deployments", "status", deployment["name"], "active")
    assert active["status"] == "DEPLOYMENT_STATUS_ACTIVE"
    same = await cli(t, "deployments", "status", deployment["name"], "active")
    assert same.exit_code == 5, same.output
    table = await cli(t, "deployments", "list", "demo/1")
    assert table.exit_code == 0, table.output
    assert "ACTIVE" in table.stdout
    assert "prod-eu" in table.stdout


async def test_usage_errors_and_not_found(registry_target: str) -> None:
    t = registry_target
    await cli_json(t, "models", "create", "demo")
    await cli_json(t, "versions", "create", "demo")

    bad = await cli(t, "flags", "raise", "demo/1", "--severity", "dire", "--reason", "x")
    assert bad.exit_code == 2, bad.output
    assert "dire" in bad.output
    bad_status = await cli(t, "deployments", "status", "demo/1/1", "sideways")
    assert bad_status.exit_code == 2, bad_status.output
    bad_name = await cli(t, "comments", "delete", "not-a-comment")
    assert bad_name.exit_code == 2, bad_name.output

    missing = await cli(t, "comments", "list", "demo/9")
    assert missing.exit_code == 3, missing.output
    assert missing.stderr.startswith("error: NOT_FOUND: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    no_flag = await cli(t, "flags", "resolve", "demo/1/999", "--resolution", "x")
    assert no_flag.exit_code == 3, no_flag.output
    no_model = await cli(
        t, "deployments", "record", "nope/1", "--environment", "dev", "--endpoint", "https://x"
    )
    assert no_model.exit_code == 3, no_model.output


async def test_flags_resolve_takes_the_forms_and_option_of_flags_raise(
    registry_target: str,
) -> None:
    t = registry_target
    await cli_json(t, "models", "create", "demo")
    await cli_json(t, "versions", "create", "demo")
    flag = await cli_json(t, "flags", "raise", "demo", "1", "--severity", "low", "--reason", "x")
    flag_id = flag["name"].rsplit("/", 1)[1]

    # MODEL VERSION ID, as raise takes MODEL VERSION, and --reason, as raise takes.
    resolved = await cli_json(t, "flags", "resolve", "demo", "1", flag_id, "--reason", "fixed")
    assert resolved["name"] == flag["name"]
    assert resolved["state"] == "FLAG_STATE_RESOLVED"
    assert resolved["resolution"] == "fixed"

    two = await cli(t, "flags", "resolve", "demo", "1", "--reason", "x")
    assert two.exit_code == 2, two.output

    shown = await asyncio.to_thread(
        CliRunner().invoke, app, ["flags", "resolve", "--help"], env={"COLUMNS": "200"}
    )
    assert "--reason" in shown.stdout
    assert "--resolution" in shown.stdout
    assert "MODEL VERSION ID" in shown.stdout
