"""`modelreg comments|flags|deployments ...`: discussion, flags and deployment records.

All three hang off a version, named as in `versions` (VERSION_REF): `MODEL/VERSION`,
`MODEL VERSION` or `models/MODEL/versions/VERSION`, VERSION being a number, an alias or
`latest`. A single comment, flag or deployment is named `MODEL/VERSION/ID` or by its full name
(`models/MODEL/versions/VERSION/comments/ID`); lists show the ids.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelregistry.cli import collaboration_render as render
from modelregistry.cli.common import (
    ClientTyper,
    ListCommand,
    RefArg,
    call_command,
    list_command,
    usage_error,
    version_ref,
)
from modelregistry.cli.parsing import parse_choice
from modelregistry.v1 import collaboration_pb2 as co
from modelregistry.v1 import collaboration_service_pb2 as cs
from modelregistry.v1.collaboration_service_pb2_grpc import CollaborationServiceStub

comments_app = ClientTyper(
    name="comments",
    help="Discuss a version: add comments and replies, list threads, delete comments.",
)
flags_app = ClientTyper(
    name="flags",
    help=(
        "Raise, list and resolve flags on a version. An OPEN flag blocks promotion to PRODUCTION."
    ),
)
deployments_app = ClientTyper(
    name="deployments",
    help="Record where a version is deployed, list its history and change a deployment's status.",
)

RequestIdOption = Annotated[
    str, typer.Option("--request-id", help="Makes a retried call safe (a UUID).")
]


# --- shared ---------------------------------------------------------------------------------


def child_name(ref: str, collection: str, param_hint: str) -> str:
    """`m/3/7`, `m/3/comments/7` or `models/m/versions/3/comments/7` → the full name."""
    parts = ref.split("/")
    if all(parts):
        if len(parts) == 6 and parts[0] == "models" and parts[2] == "versions":
            if parts[4] == collection:
                return ref
        elif len(parts) == 4 and parts[2] == collection:
            return f"models/{parts[0]}/versions/{parts[1]}/{collection}/{parts[3]}"
        elif len(parts) == 3:
            return f"models/{parts[0]}/versions/{parts[1]}/{collection}/{parts[2]}"
    raise usage_error(
        f"{ref!r} does not name one of a version's {collection}: use MODEL/VERSION/ID or "
        f"models/MODEL/versions/VERSION/{collection}/ID",
        param_hint,
    )


_SEVERITIES: dict[str, co.FlagSeverity.ValueType] = {
    "low": co.FLAG_SEVERITY_LOW,
    "medium": co.FLAG_SEVERITY_MEDIUM,
    "high": co.FLAG_SEVERITY_HIGH,
    "critical": co.FLAG_SEVERITY_CRITICAL,
}
_FLAG_STATES: dict[str, co.FlagState.ValueType] = {
    "open": co.FLAG_STATE_OPEN,
    "resolved": co.FLAG_STATE_RESOLVED,
}
_DEPLOYMENT_STATUSES: dict[str, co.DeploymentStatus.ValueType] = {
    "pending": co.DEPLOYMENT_STATUS_PENDING,
    "active": co.DEPLOYMENT_STATUS_ACTIVE,
    "failed": co.DEPLOYMENT_STATUS_FAILED,
    "retired": co.DEPLOYMENT_STATUS_RETIRED,
}


def parse_severity(raw: str) -> co.FlagSeverity.ValueType:
    return parse_choice(raw, _SEVERITIES, "flag_severity_", "--severity")


def parse_flag_state(raw: str) -> co.FlagState.ValueType:
    return parse_choice(raw, _FLAG_STATES, "flag_state_", "--state")


def parse_deployment_status(raw: str, param_hint: str) -> co.DeploymentStatus.ValueType:
    return parse_choice(raw, _DEPLOYMENT_STATUSES, "deployment_status_", param_hint)


# --- comments -------------------------------------------------------------------------------


@comments_app.command("add")
def comments_add(
    ctx: typer.Context,
    args: Annotated[
        list[str],
        typer.Argument(metavar="VERSION_REF BODY", help="The version, then the comment text."),
    ],
    reply_to: Annotated[
        str | None,
        typer.Option(
            "--reply-to",
            metavar="COMMENT_ID",
            help="Reply to this comment of the same version (its id or full name).",
            show_default=False,
        ),
    ] = None,
    request_id: RequestIdOption = "",
) -> None:
    """Comment on a version, or reply to a comment: `comments add llama/3 "looks good"`."""
    if len(args) < 2:
        raise usage_error('give the version and the text, e.g. llama/3 "looks good"')
    parent, body = version_ref(args[:-1]), args[-1]
    comment = co.Comment(body=body)
    if reply_to is not None:
        if not reply_to or "/" in reply_to:
            comment.parent_comment = child_name(reply_to, "comments", "--reply-to")
        else:
            comment.parent_comment = f"{parent}/comments/{reply_to}"
    request = cs.CreateCommentRequest(parent=parent, comment=comment, request_id=request_id)
    call_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.CreateComment,
        request,
        render.comment_added,
    )


@comments_app.command("list", cls=ListCommand)
def comments_list(
    ctx: typer.Context,
    ref: RefArg,
) -> None:
    """Show a version's comments as threads (replies under what they answer), oldest first."""
    list_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.ListComments,
        cs.ListCommentsRequest(parent=version_ref(ref)),
        "comments",
        render.comment_list,
    )


@comments_app.command("edit")
def comments_edit(
    ctx: typer.Context,
    comment: Annotated[
        str,
        typer.Argument(
            metavar="COMMENT_NAME",
            help="MODEL/VERSION/ID or models/MODEL/versions/VERSION/comments/ID.",
        ),
    ],
    body: Annotated[str, typer.Argument(help="The new text.")],
) -> None:
    """Replace the text of a comment you wrote (admins may edit any)."""
    name = child_name(comment, "comments", "COMMENT_NAME")
    request = cs.UpdateCommentRequest(comment=co.Comment(name=name, body=body))
    call_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.UpdateComment,
        request,
        lambda console, updated: console.print(f"edited {updated.name}", markup=False),
    )


@comments_app.command("delete")
def comments_delete(
    ctx: typer.Context,
    comment: Annotated[
        str,
        typer.Argument(
            metavar="COMMENT_NAME",
            help="MODEL/VERSION/ID or models/MODEL/versions/VERSION/comments/ID.",
        ),
    ],
) -> None:
    """Delete a comment you wrote (admins may delete any), unless others reply to it."""
    name = child_name(comment, "comments", "COMMENT_NAME")
    call_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.DeleteComment,
        cs.DeleteCommentRequest(name=name),
        lambda console, _: console.print(f"deleted {name}", markup=False),
    )


# --- flags ----------------------------------------------------------------------------------


@flags_app.command("raise")
def flags_raise(
    ctx: typer.Context,
    ref: RefArg,
    severity: Annotated[
        str,
        typer.Option("--severity", metavar="low|medium|high|critical", help="How serious it is."),
    ],
    reason: Annotated[str, typer.Option("--reason", help="What is wrong.")],
    request_id: RequestIdOption = "",
) -> None:
    """Flag a version; while the flag is OPEN the version cannot move to PRODUCTION."""
    parent = version_ref(ref)
    flag = co.Flag(severity=parse_severity(severity), reason=reason)
    request = cs.CreateFlagRequest(parent=parent, flag=flag, request_id=request_id)
    call_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.CreateFlag,
        request,
        render.flag_detail,
    )


@flags_app.command("list", cls=ListCommand)
def flags_list(
    ctx: typer.Context,
    ref: RefArg,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", metavar="open|resolved", help="Only these flags.", show_default=False
        ),
    ] = None,
) -> None:
    """List a version's flags, oldest first."""
    parent = version_ref(ref)
    wanted = co.FLAG_STATE_UNSPECIFIED if state is None else parse_flag_state(state)
    list_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.ListFlags,
        cs.ListFlagsRequest(parent=parent, state=wanted),
        "flags",
        render.flag_list,
    )


@flags_app.command("resolve")
def flags_resolve(
    ctx: typer.Context,
    flag: Annotated[
        list[str],
        typer.Argument(
            metavar="FLAG_NAME",
            help="MODEL/VERSION/ID, MODEL VERSION ID (as `flags raise` takes MODEL VERSION), "
            "or models/MODEL/versions/VERSION/flags/ID.",
        ),
    ],
    resolution: Annotated[
        str,
        typer.Option(
            "--resolution",
            "--reason",
            help="Why it no longer stands (--reason is the same option, as on `flags raise`).",
        ),
    ],
) -> None:
    """Resolve an OPEN flag, recording why.

    `modelreg flags resolve llama/3/1 --resolution "retrained"` and
    `modelreg flags resolve llama 3 1 --reason "retrained"` do the same.
    """
    if len(flag) not in (1, 3):
        raise usage_error(
            f"expected MODEL/VERSION/ID or MODEL VERSION ID, got {' '.join(flag)!r}", "FLAG_NAME"
        )
    name = child_name("/".join(flag), "flags", "FLAG_NAME")
    request = cs.ResolveFlagRequest(name=name, resolution=resolution)
    call_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.ResolveFlag,
        request,
        render.flag_detail,
    )


# --- deployments ----------------------------------------------------------------------------

StatusMetavar = "pending|active|failed|retired"


@deployments_app.command("record")
def deployments_record(
    ctx: typer.Context,
    ref: RefArg,
    environment: Annotated[
        str, typer.Option("--environment", metavar="ENV", help="Where it runs, e.g. prod-eu.")
    ],
    endpoint: Annotated[
        str, typer.Option("--endpoint", metavar="URI", help="The serving endpoint URI.")
    ],
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar=StatusMetavar,
            help="The status now; the server records pending without one.",
            show_default=False,
        ),
    ] = None,
    request_id: RequestIdOption = "",
) -> None:
    """Record that a version was deployed to an environment."""
    parent = version_ref(ref)
    deployment = co.Deployment(environment=environment, endpoint=endpoint)
    if status is not None:
        deployment.status = parse_deployment_status(status, "--status")
    request = cs.CreateDeploymentRequest(
        parent=parent, deployment=deployment, request_id=request_id
    )
    call_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.CreateDeployment,
        request,
        lambda console, created: render.deployment_detail(console, created, "recorded"),
    )


@deployments_app.command("list", cls=ListCommand)
def deployments_list(
    ctx: typer.Context,
    ref: RefArg,
) -> None:
    """Show a version's deployment history, newest first."""
    list_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.ListDeployments,
        cs.ListDeploymentsRequest(parent=version_ref(ref)),
        "deployments",
        render.deployment_list,
    )


@deployments_app.command("status")
def deployments_status(
    ctx: typer.Context,
    deployment: Annotated[
        str,
        typer.Argument(
            metavar="DEPLOYMENT_NAME",
            help="MODEL/VERSION/ID or models/MODEL/versions/VERSION/deployments/ID.",
        ),
    ],
    status: Annotated[str, typer.Argument(metavar="STATUS", help=StatusMetavar + ".")],
) -> None:
    """Change a deployment's status (RETIRED is final)."""
    name = child_name(deployment, "deployments", "DEPLOYMENT_NAME")
    request = cs.UpdateDeploymentStatusRequest(
        name=name, status=parse_deployment_status(status, "STATUS")
    )
    call_command(
        ctx,
        CollaborationServiceStub,
        lambda s: s.UpdateDeploymentStatus,
        request,
        lambda console, updated: render.deployment_detail(console, updated, "updated"),
    )


def register(app_: typer.Typer) -> None:
    """Add the `comments`, `flags` and `deployments` groups to the top-level app."""
    app_.add_typer(comments_app, name="comments")
    app_.add_typer(flags_app, name="flags")
    app_.add_typer(deployments_app, name="deployments")
