"""`modelreg policy|approvals|approve`: promotion policies and approvals.

A model's promotion policy says what a version must meet before it moves to PRODUCTION or
takes a protected alias: metric thresholds (`--metric 'accuracy>=0.9'`), a number of
approvals from approvers, and whether open flags block.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from modelregistry.cli.common import (
    ClientCommand,
    ClientTyper,
    ListCommand,
    ModelArg,
    RefArg,
    call_command,
    list_command,
    model_ref,
    version_ref,
)
from modelregistry.cli.render import add_row, details_table, list_table, page_footer, shorten, when
from modelregistry.v1 import policy_pb2
from modelregistry.v1 import policy_service_pb2 as ps
from modelregistry.v1.policy_service_pb2_grpc import PolicyServiceStub

policy_app = ClientTyper(
    name="policy",
    help=(
        "Show or replace a model's promotion policy: what a version needs before it may move "
        "to PRODUCTION or take a protected alias."
    ),
)
approvals_app = ClientTyper(
    name="approvals",
    help="Approve a version (needs the approver role on its model) and list its approvals.",
)


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


# --- shared ---------------------------------------------------------------------------------


def _policy_detail(console: Console, p: policy_pb2.PromotionPolicy) -> None:
    metrics = ", ".join(requirement_text(r) for r in p.required_metrics)
    updated = f"{when(p.update_time)} by {p.updated_by}" if p.updated_by else "never (default)"
    console.print(
        details_table(
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
    table = list_table("APPROVAL", "APPROVER", "CREATED", "COMMENT")
    for a in approvals:
        add_row(
            table, a.name.rsplit("/", 1)[-1], a.approver, when(a.create_time), shorten(a.comment)
        )
    console.print(table)
    page_footer(console, len(approvals), "approval", next_page_token)


# --- policy ---------------------------------------------------------------------------------


@policy_app.command("get")
def policy_get(ctx: typer.Context, model: ModelArg) -> None:
    """Show MODEL's promotion policy (the default one if it has none of its own)."""
    request = ps.GetPromotionPolicyRequest(name=f"{model_ref(model)}/promotionPolicy")
    call_command(ctx, PolicyServiceStub, lambda s: s.GetPromotionPolicy, request, _policy_detail)


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
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
    call_command(ctx, PolicyServiceStub, lambda s: s.UpdatePromotionPolicy, request, _policy_detail)


# --- approvals ------------------------------------------------------------------------------


@approvals_app.command("create")
def approvals_create(
    ctx: typer.Context,
    ref: RefArg,
    comment: Annotated[str, typer.Option("--comment", help="Why you approve.")] = "",
) -> None:
    """Approve a version; approving it again changes nothing."""
    request = ps.CreateApprovalRequest(
        parent=version_ref(ref), approval=policy_pb2.Approval(comment=comment)
    )
    call_command(
        ctx,
        PolicyServiceStub,
        lambda s: s.CreateApproval,
        request,
        lambda c, approval: c.print(Text(f"{approval.approver} approved {approval.name}")),
    )


@approvals_app.command("list", cls=ListCommand)
def approvals_list(
    ctx: typer.Context,
    ref: RefArg,
) -> None:
    """List a version's approvals, oldest first."""
    list_command(
        ctx,
        PolicyServiceStub,
        lambda s: s.ListApprovals,
        ps.ListApprovalsRequest(parent=version_ref(ref)),
        "approvals",
        _approval_list,
    )


def register(app_: typer.Typer) -> None:
    """Add `policy`, `approvals` and `approve` to the top-level app."""
    app_.add_typer(policy_app, name="policy")
    app_.add_typer(approvals_app, name="approvals")
    app_.command(
        "approve", cls=ClientCommand, help="Approve a version (the same as `approvals create`)."
    )(approvals_create)
