"""`modelreg history`: which version held a stage, alias or environment of a model, and when.

It answers "which version was in PRODUCTION (at time T)" from the registry's ListModelHistory;
the stage moves of one version are `modelreg versions history`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console

from modelregistry import client
from modelregistry.cli.common import (
    ListCommand,
    ModelArg,
    list_command,
    model_ref,
    usage_error,
)
from modelregistry.cli.parsing import parse_stage, stage_label
from modelregistry.cli.render import add_row, list_table, page_footer, when
from modelregistry.client import short_version
from modelregistry.v1 import registry_service_pb2 as rs


def parse_time(raw: str, option: str = "--at") -> Timestamp:
    """An ISO 8601 time (`2024-05-01T12:00:00Z`, `2024-05-01 12:00+02:00`); UTC if no offset."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{raw!r} is not an ISO 8601 time such as 2024-05-01T12:00:00Z", param_hint=option
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def history_filter(
    stage: str | None, alias: str | None, environment: str | None
) -> tuple[rs.HoldingKind.ValueType, str]:
    """The (kind, key) of at most one of --stage, --alias and --environment."""
    given = [
        (kind, key)
        for kind, key in (
            (rs.HOLDING_KIND_STAGE, stage),
            (rs.HOLDING_KIND_ALIAS, alias),
            (rs.HOLDING_KIND_DEPLOYMENT, environment),
        )
        if key is not None
    ]
    if len(given) > 1:
        raise usage_error("give at most one of --stage, --alias and --environment")
    if not given:
        return rs.HOLDING_KIND_UNSPECIFIED, ""
    kind, key = given[0]
    if kind == rs.HOLDING_KIND_STAGE:
        key = stage_label(parse_stage(key))
    return kind, key


_KIND_LABELS = {
    rs.HOLDING_KIND_STAGE: "stage",
    rs.HOLDING_KIND_ALIAS: "alias",
    rs.HOLDING_KIND_DEPLOYMENT: "env",
}


def history_table(
    console: Console, entries: Sequence[rs.HistoryEntry], next_page_token: str
) -> None:
    # Who made each change stays in --json: two full times need the width of a terminal.
    table = list_table("HELD", "VERSION", "FROM", "UNTIL")
    for e in entries:
        until = when(e.end_time) if e.HasField("end_time") else "now"
        held = f"{_KIND_LABELS.get(e.kind, '?')} {e.key}"
        add_row(table, held, short_version(e.version), when(e.start_time), until)
    console.print(table)
    page_footer(console, len(entries), "period", next_page_token)


def history(
    ctx: typer.Context,
    model: ModelArg,
    stage: Annotated[
        str | None,
        typer.Option("--stage", help="Only this stage, e.g. production.", show_default=False),
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Only this alias.", show_default=False)
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option("--environment", help="Only this deployment environment.", show_default=False),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Only what was held at this ISO 8601 time (UTC if no offset).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Which version held each stage, alias and environment of MODEL, and when.

    `history llama --stage production --at 2024-05-01T12:00Z` names the version that was in
    PRODUCTION then.
    """
    kind, key = history_filter(stage, alias, environment)
    request = rs.ListModelHistoryRequest(parent=model_ref(model), kind=kind, key=key)
    if at is not None:
        request.as_of_time.CopyFrom(parse_time(at))
    list_command(
        ctx,
        client.registry,
        lambda s: s.ListModelHistory,
        request,
        "entries",
        history_table,
    )


def register(app_: typer.Typer) -> None:
    """Add `history` to the top-level app."""
    app_.command("history", cls=ListCommand)(history)
