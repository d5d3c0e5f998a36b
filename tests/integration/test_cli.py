"""`modelreg` against a real server: what a person (or a CI script) does from a shell.

Most steps run in-process through typer's CliRunner, in a worker thread so that a server on the
test's event loop keeps serving; the first and the error cases run the installed console script
as a subprocess, exactly as users do.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from modelregistry.cli.main import app

MODELREG = str(Path(sys.executable).with_name("modelreg"))
SCHEMA_V1 = '[{"name": "text", "dtype": "string", "shape": [-1]}]'
SCHEMA_V2 = (
    '[{"name": "text", "dtype": "string", "shape": [-1, 1]}, {"name": "lang", "dtype": "string"}]'
)


async def cli(target: str, *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, [*args, "--target", target])


async def cli_json(target: str, *args: str) -> Any:
    result = await cli(target, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def shell(target: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        MODELREG,
        *args,
        "--target",
        target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_model_from_create_to_delete(registry_target: str) -> None:
    t = registry_target

    # The console script, as a user runs it.
    code, stdout, stderr = await shell(
        t, "models", "create", "demo", "--description", "first", "--owner", "nlp",
        "--label", "team=nlp", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    assert json.loads(stdout)["name"] == "models/demo"

    listing = await cli(t, "models", "list")
    assert listing.exit_code == 0, listing.output
    assert "demo" in listing.stdout
    assert "nlp" in listing.stdout
    listed = await cli_json(t, "models", "list")
    assert [m["name"] for m in listed["models"]] == ["models/demo"]

    got = await cli_json(t, "models", "get", "models/demo")
    assert got["owner"] == "nlp"

    updated = await cli_json(
        t, "models", "update", "demo", "--description", "second", "--label", "tier=gold"
    )
    assert updated["description"] == "second"
    assert updated["owner"] == "nlp"  # not in the mask, kept
    assert updated["labels"] == {"team": "nlp", "tier": "gold"}  # merged, not replaced

    v1 = await cli_json(
        t, "versions", "create", "demo", "--metric", "accuracy=0.80", "--param", "lr=0.1",
        "--commit", "abc123", "--input-schema", SCHEMA_V1,
    )  # fmt: skip
    assert v1["name"] == "models/demo/versions/1"
    assert v1["metrics"] == {"accuracy": 0.8}
    v2 = await cli_json(
        t, "versions", "create", "demo", "--metric", "accuracy=0.90", "--param", "lr=0.2",
        "--commit", "def456", "--input-schema", SCHEMA_V2, "--derived-from", "demo/1",
    )  # fmt: skip
    assert v2["name"] == "models/demo/versions/2"
    assert v2["lineage"]["derivedFrom"] == "models/demo/versions/1"

    shown = await cli(t, "versions", "get", "demo", "2")
    assert shown.exit_code == 0, shown.output
    assert "accuracy" in shown.stdout
    assert "def456" in shown.stdout

    patched = await cli_json(t, "versions", "update", "demo/1", "--metric", "f1=0.7")
    assert patched["metrics"] == {"accuracy": 0.8, "f1": 0.7}
    assert patched["lineage"]["source"]["commit"] == "abc123"

    # Stage moves, by each accepted form of reference.
    staged = await cli_json(t, "versions", "stage", "demo", "1", "staging")
    assert staged["modelVersion"]["stage"] == "STAGE_STAGING"
    promoted = await cli_json(
        t, "versions", "stage", "demo/2", "production", "--reason", "better accuracy"
    )
    assert promoted["modelVersion"]["stage"] == "STAGE_PRODUCTION"
    conflict = await cli(t, "versions", "stage", "models/demo/versions/1", "production")
    assert conflict.exit_code == 5, conflict.output  # FAILED_PRECONDITION: 2 is in production
    assert conflict.stderr.startswith("error: FAILED_PRECONDITION: ")

    history = await cli_json(t, "versions", "history", "demo/2")
    moves = history["stageTransitions"]
    assert [m["toStage"] for m in moves] == ["STAGE_PRODUCTION"]
    assert moves[0]["reason"] == "better accuracy"
    table = await cli(t, "versions", "history", "demo")
    assert table.exit_code == 0, table.output
    assert "PRODUCTION" in table.stdout
    assert "STAGING" in table.stdout

    # Aliases: set, then name the version by alias.
    aliased = await cli_json(t, "versions", "alias", "set", "demo", "2", "champion")
    assert aliased["name"] == "models/demo/versions/2"
    assert "champion" in aliased["aliases"]
    by_alias = await cli_json(t, "versions", "get", "demo/champion")
    assert by_alias["name"] == "models/demo/versions/2"

    # Compare: metrics with deltas, parameters and schema that differ, lineage.
    compared = await cli_json(t, "versions", "compare", "demo", "1", "champion")
    accuracy = next(m for m in compared["metrics"] if m["metric"] == "accuracy")
    assert accuracy["values"][1]["deltaFromBaseline"] == pytest.approx(0.1)
    assert [p["parameter"] for p in compared["parameters"]] == ["lr"]
    assert compared["schemaChanges"]
    assert "source.commit" in compared["lineageDifferences"]
    human = await cli(t, "versions", "compare", "demo/1", "demo/2")
    assert human.exit_code == 0, human.output
    assert "+0.1" in human.stdout
    assert "lr" in human.stdout

    # Lists: pages, --all, and the hint for the next page.
    page = await cli(t, "versions", "list", "demo", "--page-size", "1")
    assert page.exit_code == 0, page.output
    assert "--page-token" in page.stdout
    every = await cli_json(t, "versions", "list", "demo", "--page-size", "1", "--all")
    assert [v["name"] for v in every["modelVersions"]] == [
        "models/demo/versions/2",
        "models/demo/versions/1",
    ]

    removed = await cli_json(t, "versions", "alias", "delete", "demo", "champion")
    assert removed["name"] == "models/demo/versions/2"
    gone = await cli(t, "versions", "get", "demo/champion")
    assert gone.exit_code == 3

    # Deletes: a production version must be archived first; a model with versions needs --force.
    refused = await cli(t, "versions", "delete", "demo/2")
    assert refused.exit_code == 5, refused.output
    assert (await cli(t, "versions", "stage", "demo", "2", "archived")).exit_code == 0
    assert (await cli(t, "versions", "delete", "demo", "2")).exit_code == 0
    assert (await cli(t, "models", "delete", "demo")).exit_code == 5
    deleted = await cli(t, "models", "delete", "demo", "--force")
    assert deleted.exit_code == 0, deleted.output
    assert (await cli(t, "models", "get", "demo")).exit_code == 3


async def test_not_found_is_one_line_and_exit_3(registry_target: str) -> None:
    code, stdout, stderr = await shell(registry_target, "versions", "get", "nope/1")
    assert code == 3
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: NOT_FOUND: ")
    assert "nope" in lines[0]


async def test_already_exists_is_exit_4(registry_target: str) -> None:
    assert (await cli(registry_target, "models", "create", "twice")).exit_code == 0
    again = await cli(registry_target, "models", "create", "twice")
    assert again.exit_code == 4
    assert again.stderr.startswith("error: ALREADY_EXISTS: ")


async def test_invalid_argument_is_exit_6(registry_target: str) -> None:
    result = await cli(registry_target, "models", "create", "Not_A_Valid_Id")
    assert result.exit_code == 6
    assert result.stderr.startswith("error: INVALID_ARGUMENT: ")
    assert len(result.stderr.strip().splitlines()) == 1


async def test_a_metric_that_is_not_a_number_is_a_usage_error(registry_target: str) -> None:
    assert (await cli(registry_target, "models", "create", "m")).exit_code == 0
    result = await cli(registry_target, "versions", "create", "m", "--metric", "x=abc")
    assert result.exit_code == 2
    assert "metric value must be a number" in result.output
    listed = await cli_json(registry_target, "versions", "list", "m")
    assert listed.get("modelVersions", []) == []


async def piped(target: str, *args: str) -> str:
    """The console script's stdout when it is a pipe and $COLUMNS is unset."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    ran = await asyncio.to_thread(
        subprocess.run, [MODELREG, *args, "--target", target],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


async def test_tables_in_a_pipe_keep_every_token_whole(registry_target: str) -> None:
    # Output captured by a script or piped to a pager: not a terminal, no $COLUMNS. Rich would
    # lay tables out in 80 columns and fold `task=chat` into `tas/k=c/hat`.
    t = registry_target
    labels = ["task=chat", "team=natural-language-processing", "region=eu-west-1"]
    metrics = ["accuracy=0.913", "f1_macro=0.887", "latency_p99_ms=412"]
    source = "https://git.example.com/research/assistants/chat-models/training/pipelines.git"
    name = "chat-assistant-multilingual"
    await cli_json(
        t, "models", "create", name, "--owner", "nlp-research",
        "--description", "A multilingual chat assistant tuned on support conversations",
        *[arg for label in labels for arg in ("--label", label)],
    )  # fmt: skip
    await cli_json(
        t, "versions", "create", name, "--source-uri", source,
        *[arg for label in labels for arg in ("--label", label)],
        *[arg for metric in metrics for arg in ("--metric", metric)],
    )  # fmt: skip
    await cli_json(t, "versions", "alias", "set", name, "1", "multilingual-champion")

    def row_of(stdout: str, marker: str) -> str:
        rows = [line for line in stdout.splitlines() if marker in line]
        assert len(rows) == 1, stdout
        return rows[0]

    model_row = row_of(await piped(t, "models", "list"), name)
    for label in labels:
        assert label in model_row
    version_row = row_of(await piped(t, "versions", "list", name), "multilingual-champion")
    assert f"{name}/1" in version_row
    for metric in metrics:
        assert metric in version_row
    detail = await piped(t, "versions", "get", f"{name}/1")
    assert source in row_of(detail, "source")
    for label in labels:
        assert label in row_of(detail, "labels")
