"""`modelreg policy|approvals|approve|history` against a real server, through CliRunner.

Each call runs in a worker thread so that the server on the test's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from support.auth import make_token
from typer.testing import CliRunner, Result

from modelregistry.cli.main import app
from modelregistry.domain.access import Role


async def cli(target: str, *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, [*args, "--target", target])


async def cli_json(target: str, *args: str) -> Any:
    result = await cli(target, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_policy_approvals_promotion_and_history(
    registry_target: str, migrated_database_url: str
) -> None:
    t = registry_target
    alice = await make_token(migrated_database_url, principal="alice", role=Role.APPROVER)
    eddie = await make_token(migrated_database_url, principal="eddie", role=Role.EDITOR)
    await cli_json(t, "models", "create", "demo")
    await cli_json(t, "versions", "create", "demo", "--metric", "accuracy=0.8")

    default = await cli_json(t, "policy", "get", "demo")
    assert default["name"] == "models/demo/promotionPolicy"
    assert "requiredMetrics" not in default
    assert default["etag"]
    shown = await cli(t, "policy", "get", "models/demo")
    assert shown.exit_code == 0, shown.output
    assert "block promotion" in shown.stdout

    policy = await cli_json(
        t, "policy", "set", "demo", "--metric", "accuracy>=0.9", "--metric", "loss < 0.2",
        "--approvals", "1", "--protect", "champion", "--etag", default["etag"],
    )  # fmt: skip
    assert policy["requiredMetrics"] == [
        {"metric": "accuracy", "comparator": "COMPARATOR_GREATER_OR_EQUAL", "threshold": 0.9},
        {"metric": "loss", "comparator": "COMPARATOR_LESS", "threshold": 0.2},
    ]
    assert policy["requiredApprovals"] == 1
    assert policy["protectedAliases"] == ["champion"]
    assert policy["updatedBy"] == "test-admin"
    shown = await cli(t, "policy", "get", "demo")
    assert "accuracy >= 0.9, loss < 0.2" in shown.stdout
    stale = await cli(t, "policy", "set", "demo", "--etag", default["etag"])
    assert stale.exit_code == 5, stale.output  # ABORTED

    await cli_json(t, "versions", "stage", "demo/1", "staging")
    blocked = await cli(t, "versions", "stage", "demo/1", "production")
    assert blocked.exit_code == 5, blocked.output
    assert "accuracy is 0.8, needs >= 0.9" in blocked.stderr
    assert "loss is missing, needs < 0.2" in blocked.stderr
    assert "has 0 of 1 approvals" in blocked.stderr

    await cli_json(
        t, "versions", "update", "demo/1", "--metric", "accuracy=0.95", "--metric", "loss=0.1"
    )
    editor_approval = await cli(t, "approve", "demo/1", "--token", eddie)
    assert editor_approval.exit_code == 8, editor_approval.output  # PERMISSION_DENIED
    assert "approver role" in editor_approval.stderr
    approval = await cli_json(
        t, "approve", "demo/1", "--comment", "eval set B is clean", "--token", alice
    )
    assert approval["approver"] == "alice"
    assert approval["name"].startswith("models/demo/versions/1/approvals/")
    again = await cli_json(t, "approvals", "create", "demo", "1", "--token", alice)
    assert again["name"] == approval["name"]
    listed = await cli_json(t, "approvals", "list", "demo/1")
    assert [a["approver"] for a in listed["approvals"]] == ["alice"]
    table = await cli(t, "approvals", "list", "demo/1")
    assert "eval set B is clean" in table.stdout

    before_promotion = datetime.now(UTC)
    await asyncio.sleep(0.02)
    moved = await cli_json(t, "versions", "stage", "demo/1", "production", "--token", alice)
    assert moved["modelVersion"]["stage"] == "STAGE_PRODUCTION"
    await cli_json(t, "versions", "alias", "set", "demo/1", "champion", "--token", alice)

    production = await cli_json(t, "history", "demo", "--stage", "prod")
    assert [(e["key"], e["version"]) for e in production["entries"]] == [
        ("PRODUCTION", "models/demo/versions/1")
    ]
    assert "endTime" not in production["entries"][0]
    earlier = await cli_json(
        t, "history", "demo", "--stage", "production", "--at", before_promotion.isoformat()
    )
    assert earlier == {}
    then = await cli_json(
        t, "history", "demo", "--at", before_promotion.isoformat(), "--page-size", "5"
    )
    assert [(e["kind"], e["key"]) for e in then["entries"]] == [("HOLDING_KIND_STAGE", "STAGING")]
    champion = await cli_json(t, "history", "demo", "--alias", "champion")
    assert [e["principal"] for e in champion["entries"]] == ["alice"]
    timeline = await cli(t, "history", "demo")
    assert timeline.exit_code == 0, timeline.output
    for text in ("DEVELOPMENT", "STAGING", "PRODUCTION", "champion", "demo/1", "now"):
        assert text in timeline.stdout


async def test_usage_and_server_errors(registry_target: str) -> None:
    t = registry_target
    await cli_json(t, "models", "create", "demo")
    args: tuple[str, ...]
    for args in (
        ("policy", "set", "demo", "--metric", "accuracy=0.9"),
        ("policy", "set", "demo", "--metric", "accuracy>=inf"),
        ("policy", "set", "demo", "--approvals", "-1"),
        ("history", "demo", "--stage", "production", "--alias", "champion"),
        ("history", "demo", "--stage", "live"),
        ("history", "demo", "--at", "last tuesday"),
        ("approve", "demo/1/2/3"),
    ):
        result = await cli(t, *args)
        assert result.exit_code == 2, (args, result.output)
    invalid = await cli(t, "policy", "set", "demo", "--protect", "latest", "--approvals", "33")
    assert invalid.exit_code == 6, invalid.output
    assert "promotion_policy.protected_aliases[0]" in invalid.stderr
    assert "promotion_policy.required_approvals" in invalid.stderr
    for args in (
        ("policy", "get", "nope"),
        ("approve", "demo/1"),
        ("approvals", "list", "demo/1"),
        ("history", "nope"),
    ):
        result = await cli(t, *args)
        assert result.exit_code == 3, (args, result.output)
