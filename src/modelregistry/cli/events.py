"""`modelreg events list|watch`: read and follow the audit log (over AuditService).

Every change the registry makes is an event numbered 1, 2, 3, ... in commit order without
gaps. `list` pages through them; `watch` follows them as they commit, one line per event
(`--json`: one JSON object per line, what a CI pipeline reads), and when the server goes away
it reconnects after the last sequence it printed, so nothing is missed or printed twice.
"""

from __future__ import annotations

import json as jsonlib
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelregistry.cli.common import (
    ClientTyper,
    Connection,
    ListCommand,
    list_command,
    usage_error,
)
from modelregistry.cli.errors import fail_rpc, format_rpc_error
from modelregistry.v1 import audit_pb2
from modelregistry.v1 import audit_service_pb2 as pb
from modelregistry.v1.audit_service_pb2_grpc import AuditServiceStub

app = ClientTyper(
    name="events",
    help=(
        "Read and follow the audit log: every change, who made it and when, numbered in "
        "commit order without gaps."
    ),
)

# Reconnecting `watch`: the first retry soon, then doubling up to this, reset by any event.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
# Detect a server that vanished without closing the connection, on an idle stream too.
WATCH_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)
_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE})

ResourceOption = Annotated[
    str,
    typer.Option(
        "--resource",
        metavar="NAME",
        help="Events on this resource and everything beneath it: models/llama (or just "
        "llama), models/llama/versions/3.",
    ),
]
PrincipalOption = Annotated[str, typer.Option("--principal", help="Events by this principal.")]
ActionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--action",
        metavar="METHOD",
        help="Events of this method, e.g. TransitionModelVersionStage (repeat for any of them).",
        show_default=False,
    ),
]
AfterOption = Annotated[
    int, typer.Option("--after", min=0, metavar="SEQUENCE", help="Only events after this one.")
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        help="Events at or after TIME: ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z; UTC unless "
        "an offset is given) or an age such as 30s, 15m, 2h, 7d.",
        show_default=False,
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="TIME",
        help="Events before TIME (same forms as --since).",
        show_default=False,
    ),
]

_AGE = re.compile(r"^(\d+)([smhd])$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(raw: str, option: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it has no offset) or an age like `15m` before `now`."""
    text = raw.strip()
    age = _AGE.match(text)
    if age:
        moment = now or datetime.now(UTC)
        return moment - timedelta(**{_AGE_UNITS[age.group(2)]: int(age.group(1))})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise usage_error(
            f"{raw!r} is not a time: use ISO 8601 (2024-05-01T12:00:00Z) or an age (15m, 2h, 7d)",
            option,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def resource_name(raw: str) -> str:
    """`llama` is short for `models/llama`; anything with a '/' is a resource name as is."""
    return raw if "/" in raw or not raw else f"models/{raw}"


def build_filter(
    resource: str,
    principal: str,
    actions: list[str] | None,
    since: str | None,
    until: str | None,
) -> audit_pb2.AuditEventFilter:
    message = audit_pb2.AuditEventFilter(
        resource=resource_name(resource), principal=principal, actions=actions or []
    )
    if since is not None:
        message.start_time.CopyFrom(_timestamp(parse_time(since, "--since")))
    if until is not None:
        message.end_time.CopyFrom(_timestamp(parse_time(until, "--until")))
    return message


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def event_line(event: audit_pb2.AuditEvent) -> str:
    """One event as one JSON line (proto3 JSON mapping: int64 fields are strings)."""
    as_dict = json_format.MessageToDict(event)
    return jsonlib.dumps(as_dict, sort_keys=True, separators=(",", ":"))


def event_text(event: audit_pb2.AuditEvent) -> str:
    stamp = event.event_time.ToDatetime(tzinfo=UTC).isoformat(timespec="milliseconds")
    principal = event.principal or "-"
    return f"{event.sequence}\t{stamp}\t{principal}\t{event.action}\t{event.resource}"


# --- list -------------------------------------------------------------------------------------


@app.command("list", cls=ListCommand)
def events_list(
    ctx: typer.Context,
    resource: ResourceOption = "",
    principal: PrincipalOption = "",
    action: ActionOption = None,
    after: AfterOption = 0,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """List events, oldest first: `events list --resource llama --since 1d`."""
    event_filter = build_filter(resource, principal, action, since, until)
    list_command(
        ctx,
        AuditServiceStub,
        lambda s: s.ListAuditEvents,
        pb.ListAuditEventsRequest(filter=event_filter, after_sequence=after),
        "audit_events",
        _render_list,
    )


def _render_list(
    console: Console, events: Sequence[audit_pb2.AuditEvent], next_page_token: str
) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("SEQ", "TIME (UTC)", "PRINCIPAL", "ACTION", "RESOURCE"):
        # Only the resource gives way (folding) when the terminal is narrow: a folded action
        # or principal is unreadable.
        table.add_column(column, overflow="fold", no_wrap=column != "RESOURCE")
    for event in events:
        stamp = event.event_time.ToDatetime(tzinfo=UTC).strftime("%m-%d %H:%M:%S")
        # Shortened as the other tables name versions (`fraud/1`); --json keeps full names.
        resource = event.resource.removeprefix("models/").replace("/versions/", "/", 1)
        cells = (str(event.sequence), stamp, event.principal, event.action, resource)
        table.add_row(*(Text(cell) for cell in cells))
    if events:
        console.print(table)
    count = len(events)
    console.print(Text(f"{count} event{'s' if count != 1 else ''}"), style="dim")
    if next_page_token:
        console.print(Text(f"more: --page-token {next_page_token} (or --all)"), style="dim")


# --- watch ------------------------------------------------------------------------------------


@app.command("watch")
def events_watch(
    ctx: typer.Context,
    after: AfterOption = 0,
    resource: ResourceOption = "",
    principal: PrincipalOption = "",
    action: ActionOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    count: Annotated[
        int,
        typer.Option("--count", min=0, help="Exit after this many events (0: follow forever)."),
    ] = 0,
) -> None:
    """Print events after --after as they commit, one per line, until interrupted.

    A script that records the last sequence it handled and passes it back as --after misses
    nothing across restarts. When the server goes away (UNAVAILABLE) the command reconnects
    with backoff, after the last event it printed. --timeout does not apply: the stream has
    no deadline.
    """
    event_filter = build_filter(resource, principal, action, since, until)
    try:
        _follow(event_filter, after, count, Connection.of(ctx))
    except BrokenPipeError:
        # The reader went away (`| head -n 3`): stop quietly, as other filters do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _follow(
    event_filter: audit_pb2.AuditEventFilter,
    after: int,
    count: int,
    connection: Connection,
) -> None:
    last, printed, delay = after, 0, RETRY_FIRST_S
    target = connection.target
    with connection.open(AuditServiceStub, WATCH_CHANNEL_OPTIONS) as api:
        while True:
            request = pb.WatchEventsRequest(after_sequence=last, filter=event_filter)
            try:
                for event in api.stub.WatchEvents(request):
                    print(event_line(event) if connection.json else event_text(event), flush=True)
                    last, printed, delay = event.sequence, printed + 1, RETRY_FIRST_S
                    if count and printed >= count:
                        return
                why = "the stream ended"
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                if code not in _RETRIED:
                    fail_rpc(error, target)
                why = format_rpc_error(error, target).removeprefix("error: ")
            print(
                f"watch: {why}; reconnecting in {delay:g} s after sequence {last}",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


def register(app_: typer.Typer) -> None:
    """Add the `events` group to the top-level app."""
    app_.add_typer(app, name="events")
