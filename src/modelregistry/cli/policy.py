"""`modelreg policy|approvals|approve|history`: promotion policies, approvals, model history.

A model's promotion policy says what a version must meet before it moves to PRODUCTION or
takes a protected alias: metric thresholds (`--metric 'accuracy>=0.9'`), a number of
approvals from approvers, and whether open flags block. `history` answers "which version held
stage, alias or environment X (at time T)".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Annotated

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelregistry import client
from modelregistry.cli.common import (
    AllOption,
    JsonOption,
    PageSizeOption,
    PageTokenOption,
    ServiceSession,
    TargetOption,
    TimeoutOption,
    TokenOption,
    emit,
    model_ref,
    service_session,
    usage_error,
    version_ref,
)
from modelregistry.cli.errors import EXIT_CODES_HELP
from modelregistry.cli.parsing import parse_stage, stage_label
from modelregistry.cli.render import _details, _footer, _row, _short, _table, when
from modelregistry.client import short_version
from modelregistry.v1 import policy_pb2, policy_service_pb2_grpc
from modelregistry.v1 import policy_service_pb2 as ps
from modelregistry.v1 import registry_service_pb2 as rs

DEFAULT_TIMEOUT = client.DEFAULT_TIMEOUT_S
REF_HELP = "MODEL/VERSION, MODEL VERSION, or models/MODEL/versions/VERSION (number or alias)."

policy_app = typer.Typer(
    name="policy",
    help=(
        "Show or replace a model's promotion policy: what a version needs before it may move "
        "to PRODUCTION or take a protected alias."
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)
approvals_app = typer.Typer(
    name="approvals",
    help="Approve a version (needs the approver role on its model) and list its approvals.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)

ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help="`name` or `models/name`.")]
RefArg = Annotated[list[str], typer.Argument(metavar="VERSION_REF", help=REF_HELP)]


# --- pure parsing ---------------------------------------------------------------------------

_COMPARATORS: dict[str, policy_pb2.Comparator.ValueType] = {
    ">=": policy_pb2.COMPARATOR_GREATER_OR_EQUAL,
    ">": policy_pb2.COMPARATOR_GREATER,
    "<=": policy_pb2.COMPARATOR_LESS_OR_EQUAL,
    "<": policy_pb2.COMPARATOR_LESS,
}
_SYMBOLS = {value: key for key, value in _COMPARATORS.items()}
# Longest operators first, so `>=` is never read as `>` followed by `=0.9`.
_METRIC_SPEC = re.compile(r"^\s*(?P<metric>[^<>=\s]+)\s*(?P<op>>=|<=|>|<)\s*(?P<threshold>\S+)\s*$")


def parse_metric_requirement(raw: str, option: str = "--metric") -> policy_pb2.MetricRequirement:
    """`accuracy>=0.9`, `loss < 0.2` → a MetricRequirement; anything else is a usage error."""
    match = _METRIC_SPEC.match(raw)
    if match is None:
        raise typer.BadParameter(
            f"{raw!r} is not METRIC OP NUMBER with OP one of >=, >, <=, < (e.g. 'accuracy>=0.9')",
            param_hint=option,
        )
    try:
        threshold = float(match["threshold"])
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise typer.BadParameter(
            f"{raw!r}: the threshold {match['threshold']!r} is not a finite number",
            param_hint=option,
        )
    return policy_pb2.MetricRequirement(
        metric=match["metric"], comparator=_COMPARATORS[match["op"]], threshold=threshold
    )


def requirement_text(requirement: policy_pb2.MetricRequirement) -> str:
    """The inverse of parse_metric_requirement: `accuracy >= 0.9`."""
    op = _SYMBOLS.get(requirement.comparator, "?")
    return f"{requirement.metric} {op} {requirement.threshold:.15g}"


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


# --- shared ---------------------------------------------------------------------------------


def _connect(
    target: str, timeout: float, token: str | None
) -> AbstractContextManager[ServiceSession[policy_service_pb2_grpc.PolicyServiceStub]]:
    return service_session(target, timeout, token, policy_service_pb2_grpc.PolicyServiceStub)


def _policy_detail(console: Console, p: policy_pb2.PromotionPolicy) -> None:
    metrics = ", ".join(requirement_text(r) for r in p.required_metrics)
    updated = f"{when(p.update_time)} by {p.updated_by}" if p.updated_by else "never (default)"
    console.print(
        _details(
            [
                ("name", p.name),
                ("required metrics", metrics or "none"),
                ("required approvals", p.required_approvals),
                ("open flags", "allowed" if p.allow_open_flags else "block promotion"),
                ("protected aliases", ", ".join(p.protected_aliases) or "none"),
                ("updated", updated),
                ("etag", p.etag),
            ]
        )
    )


def _approval_list(
    console: Console, approvals: Sequence[policy_pb2.Approval], next_page_token: str
) -> None:
    table = _table("APPROVAL", "APPROVER", "CREATED", "COMMENT")
    for a in approvals:
        _row(table, a.name.rsplit("/", 1)[-1], a.approver, when(a.create_time), _short(a.comment))
    console.print(table)
    _footer(console, len(approvals), "approval", next_page_token)


_KIND_LABELS = {
    rs.HOLDING_KIND_STAGE: "stage",
    rs.HOLDING_KIND_ALIAS: "alias",
    rs.HOLDING_KIND_DEPLOYMENT: "env",
}


def _history_table(
    console: Console, entries: Sequence[rs.HistoryEntry], next_page_token: str
) -> None:
    # Who made each change stays in --json: two full times need the width of a terminal.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("HELD", "VERSION", "FROM", "UNTIL"):
        table.add_column(column, overflow="fold", no_wrap=True)
    for e in entries:
        until = when(e.end_time) if e.HasField("end_time") else "now"
        held = f"{_KIND_LABELS.get(e.kind, '?')} {e.key}"
        _row(table, held, short_version(e.version), when(e.start_time), until)
    console.print(table)
    _footer(console, len(entries), "period", next_page_token)


# --- policy ---------------------------------------------------------------------------------


@policy_app.command("get")
def policy_get(
    model: ModelArg,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Show MODEL's promotion policy (the default one if it has none of its own)."""
    name = f"{model_ref(model)}/promotionPolicy"
    with _connect(target, timeout, token) as conn:
        policy = conn.session.call(
            conn.service.GetPromotionPolicy, ps.GetPromotionPolicyRequest(name=name)
        )
    emit(policy, json, lambda c: _policy_detail(c, policy))


@policy_app.command("set")
def policy_set(
    model: ModelArg,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            metavar="'METRIC OP NUMBER'",
            help="A threshold such as 'accuracy>=0.9' (OP: >=, >, <=, <); repeat.",
        ),
    ] = None,
    approvals: Annotated[
        int,
        typer.Option("--approvals", min=0, help="Approvals needed from distinct approvers."),
    ] = 0,
    allow_open_flags: Annotated[
        bool,
        typer.Option("--allow-open-flags", help="Let versions with OPEN flags be promoted."),
    ] = False,
    protect: Annotated[
        list[str] | None,
        typer.Option(
            "--protect",
            metavar="ALIAS",
            help="An alias only approvers may move, onto versions meeting the policy; repeat.",
        ),
    ] = None,
    etag: Annotated[
        str | None,
        typer.Option(
            "--etag", help="Refuse if the policy changed since this etag.", show_default=False
        ),
    ] = None,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Replace MODEL's whole promotion policy (needs the admin role on the model).

    Example: `policy set llama --metric 'accuracy>=0.9' --metric 'loss<0.2' --approvals 2
    --protect production`. Options left out go back to their defaults.
    """
    policy = policy_pb2.PromotionPolicy(
        name=f"{model_ref(model)}/promotionPolicy",
        required_metrics=[parse_metric_requirement(m) for m in metrics or ()],
        required_approvals=approvals,
        allow_open_flags=allow_open_flags,
        protected_aliases=protect or [],
        etag=etag or "",
    )
    request = ps.UpdatePromotionPolicyRequest(promotion_policy=policy)
    with _connect(target, timeout, token) as conn:
        updated = conn.session.call(conn.service.UpdatePromotionPolicy, request)
    emit(updated, json, lambda c: _policy_detail(c, updated))


# --- approvals ------------------------------------------------------------------------------


@approvals_app.command("create")
def approvals_create(
    ref: RefArg,
    comment: Annotated[str, typer.Option("--comment", help="Why you approve.")] = "",
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Approve a version; approving it again changes nothing."""
    request = ps.CreateApprovalRequest(
        parent=version_ref(ref), approval=policy_pb2.Approval(comment=comment)
    )
    with _connect(target, timeout, token) as conn:
        approval = conn.session.call(conn.service.CreateApproval, request)
    emit(
        approval,
        json,
        lambda c: c.print(Text(f"{approval.approver} approved {approval.name}")),
    )


@approvals_app.command("list")
def approvals_list(
    ref: RefArg,
    all_: AllOption = False,
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List a version's approvals, oldest first."""
    parent = version_ref(ref)
    with _connect(target, timeout, token) as conn:
        merged: ps.ListApprovalsResponse = conn.session.list_pages(
            conn.service.ListApprovals,
            lambda page: ps.ListApprovalsRequest(
                parent=parent, page_size=page_size, page_token=page
            ),
            "approvals",
            all_,
            page_token,
        )
    emit(merged, json, lambda c: _approval_list(c, merged.approvals, merged.next_page_token))


# --- history --------------------------------------------------------------------------------


def history(
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
    all_: AllOption = False,
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Which version held each stage, alias and environment of MODEL, and when.

    `history llama --stage production --at 2024-05-01T12:00Z` names the version that was in
    PRODUCTION then.
    """
    parent = model_ref(model)
    kind, key = history_filter(stage, alias, environment)
    as_of = parse_time(at) if at is not None else None

    def request_for(page: str) -> rs.ListModelHistoryRequest:
        request = rs.ListModelHistoryRequest(
            parent=parent, kind=kind, key=key, page_size=page_size, page_token=page
        )
        if as_of is not None:
            request.as_of_time.CopyFrom(as_of)
        return request

    with _connect(target, timeout, token) as conn:
        merged: rs.ListModelHistoryResponse = conn.session.list_pages(
            conn.session.stub.ListModelHistory, request_for, "entries", all_, page_token
        )
    emit(merged, json, lambda c: _history_table(c, merged.entries, merged.next_page_token))


def register(app_: typer.Typer) -> None:
    """Add `policy`, `approvals`, `approve` and `history` to the top-level app."""
    app_.add_typer(policy_app, name="policy")
    app_.add_typer(approvals_app, name="approvals")
    app_.command("approve", help="Approve a version (the same as `approvals create`).")(
        approvals_create
    )
    app_.command("history")(history)
