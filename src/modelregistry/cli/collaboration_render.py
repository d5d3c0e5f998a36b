"""Human output for `comments`, `flags` and `deployments`, in the style of render.py.

Lists show each resource's id (the last segment of its name); the commands that act on one
accept `MODEL/VERSION/ID` as well as the full name. Every value goes in as `Text`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from modelregistry.cli.render import add_row, list_table, page_footer, shorten, when
from modelregistry.client import short_version
from modelregistry.v1 import collaboration_pb2 as co

_BODY_WIDTH = 60
_INDENT = "  "


def resource_id(name: str) -> str:
    """`models/m/versions/1/comments/7` → `7`."""
    return name.rsplit("/", 1)[-1]


def _version_of(name: str) -> str:
    """`models/m/versions/1/flags/7` → `m/1`."""
    return short_version(name.rsplit("/", 2)[0])


def severity_label(severity: int) -> str:
    return co.FlagSeverity.Name(severity).removeprefix("FLAG_SEVERITY_")  # type: ignore[arg-type]


def flag_state_label(state: int) -> str:
    return co.FlagState.Name(state).removeprefix("FLAG_STATE_")  # type: ignore[arg-type]


def deployment_status_label(status: int) -> str:
    name = co.DeploymentStatus.Name(status)  # type: ignore[arg-type]
    return name.removeprefix("DEPLOYMENT_STATUS_")


# --- comments --------------------------------------------------------------------------------


def comment_threads(comments: Sequence[co.Comment]) -> list[tuple[int, co.Comment]]:
    """(depth, comment) in thread order: each comment, then its replies (oldest first) indented.

    A reply whose parent is not among `comments` (e.g. on an earlier page) starts a thread.
    """
    names = {c.name for c in comments}
    children: dict[str, list[co.Comment]] = {}
    roots: list[co.Comment] = []
    for c in comments:
        if c.parent_comment and c.parent_comment in names and c.parent_comment != c.name:
            children.setdefault(c.parent_comment, []).append(c)
        else:
            roots.append(c)
    ordered: list[tuple[int, co.Comment]] = []
    seen: set[str] = set()

    def walk(comment: co.Comment, depth: int) -> None:
        if comment.name in seen:  # a cycle cannot come from the server; never loop on one
            return
        seen.add(comment.name)
        ordered.append((depth, comment))
        for reply in children.get(comment.name, ()):
            walk(reply, depth + 1)

    for root in roots:
        walk(root, 0)
    return ordered


def comment_list(console: Console, comments: Sequence[co.Comment], next_page_token: str) -> None:
    table = list_table("COMMENT", "AUTHOR", "CREATED", "BODY")
    for depth, c in comment_threads(comments):
        marker = _INDENT * (depth - 1) + "└ " if depth else ""
        add_row(
            table,
            marker + resource_id(c.name),
            c.author,
            when(c.create_time),
            _INDENT * depth + shorten(c.body, _BODY_WIDTH),
        )
    console.print(table)
    page_footer(console, len(comments), "comment", next_page_token)


def comment_added(console: Console, c: co.Comment) -> None:
    what = f"reply to {resource_id(c.parent_comment)}" if c.parent_comment else "comment"
    console.print(Text(f"added {what} {c.name}"))


# --- flags -----------------------------------------------------------------------------------


def flag_list(console: Console, flags: Sequence[co.Flag], next_page_token: str) -> None:
    # The resolution stays in --json (and `flags resolve`'s output): the reason needs the width.
    table = list_table("FLAG", "STATE", "SEVERITY", "RAISED BY", "CREATED", "REASON")
    for f in flags:
        add_row(
            table,
            resource_id(f.name),
            flag_state_label(f.state),
            severity_label(f.severity),
            f.raised_by,
            when(f.create_time),
            shorten(f.reason),
        )
    console.print(table)
    page_footer(console, len(flags), "flag", next_page_token)


def flag_detail(console: Console, f: co.Flag) -> None:
    if f.state == co.FLAG_STATE_RESOLVED:
        by = f" by {f.resolved_by}" if f.resolved_by else ""
        console.print(Text(f"resolved {f.name}{by}: {f.resolution}"))
    else:
        severity = severity_label(f.severity)
        console.print(Text(f"raised {severity} flag {f.name} on {_version_of(f.name)}"))
        console.print(Text(f"{_version_of(f.name)} cannot move to PRODUCTION until it is resolved"))


# --- deployments -----------------------------------------------------------------------------


def deployment_list(
    console: Console, deployments: Sequence[co.Deployment], next_page_token: str
) -> None:
    # Who recorded it and when stay in --json: the endpoint needs the width.
    table = list_table("DEPLOYMENT", "ENVIRONMENT", "STATUS", "UPDATED", "ENDPOINT")
    for d in deployments:
        add_row(
            table,
            resource_id(d.name),
            d.environment,
            deployment_status_label(d.status),
            when(d.update_time),
            d.endpoint,
        )
    console.print(table)
    page_footer(console, len(deployments), "deployment", next_page_token)


def deployment_detail(console: Console, d: co.Deployment, verb: str) -> None:
    status = deployment_status_label(d.status)
    console.print(Text(f"{verb} {d.name}: {d.environment} {status} at {d.endpoint}"))
