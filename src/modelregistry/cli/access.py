"""`modelreg tokens|grants|whoami`: bearer tokens and roles, over AccessService.

These verbs go through the API with the caller's token (admin for all but `whoami`); the
DB-direct `modelreg token create|revoke` is the bootstrap for a deployment's first admin.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
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
    print_json,
    service_session,
)
from modelregistry.cli.errors import EXIT_CODES_HELP
from modelregistry.cli.render import _details, _footer, _row, _short, when
from modelregistry.v1 import access_pb2 as ap
from modelregistry.v1 import access_service_pb2 as asp
from modelregistry.v1 import access_service_pb2_grpc

DEFAULT_TIMEOUT = client.DEFAULT_TIMEOUT_S
_ADMIN_NOTE = "Needs a token with the admin role everywhere."

tokens_app = typer.Typer(
    name="tokens",
    help=(
        "Make, list and revoke bearer tokens over the API. " + _ADMIN_NOTE + " (The first "
        "admin token of a deployment comes from `modelreg token create`, against the database.)"
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)
grants_app = typer.Typer(
    name="grants",
    help=(
        "Give principals roles everywhere or on one model, list and remove them. "
        "Roles: viewer < editor < approver < admin. " + _ADMIN_NOTE
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="MODEL",
        help="A model (`llama` or `models/llama`); without it, the role everywhere.",
        show_default=False,
    ),
]
PrincipalFilter = Annotated[
    str | None,
    typer.Option("--principal", help="Only this principal's.", show_default=False),
]

_ROLES: dict[str, ap.Role.ValueType] = {
    "viewer": ap.ROLE_VIEWER,
    "editor": ap.ROLE_EDITOR,
    "approver": ap.ROLE_APPROVER,
    "admin": ap.ROLE_ADMIN,
}


# --- shared ---------------------------------------------------------------------------------


def _connect(
    target: str, timeout: float, token: str | None
) -> AbstractContextManager[ServiceSession[access_service_pb2_grpc.AccessServiceStub]]:
    return service_session(target, timeout, token, access_service_pb2_grpc.AccessServiceStub)


def parse_role(raw: str) -> ap.Role.ValueType:
    """`editor`, `EDITOR` or `ROLE_EDITOR` → the enum value; anything else is exit 2."""
    key = raw.strip().lower().removeprefix("role_")
    if key not in _ROLES:
        raise typer.BadParameter(f"{raw!r}: use one of {', '.join(_ROLES)}", param_hint="ROLE")
    return _ROLES[key]


def token_name(ref: str) -> str:
    """`tokens/ID` or a bare ID → `tokens/ID` (the server checks the ID is a UUID)."""
    return ref if ref.startswith("tokens/") else f"tokens/{ref}"


def role_label(role: int) -> str:
    return ap.Role.Name(role).removeprefix("ROLE_").lower()  # type: ignore[arg-type]


def scope_label(model: str) -> str:
    return model or "everywhere"


def _set(ts: Timestamp) -> bool:
    return bool(ts.seconds or ts.nanos)


def token_state(token: ap.Token, now: datetime) -> str:
    if _set(token.revoke_time):
        return "revoked"
    if _set(token.expire_time) and token.expire_time.ToDatetime(UTC) <= now:
        return "expired"
    return "active"


def _table(*columns: str) -> Table:
    # Collapsed padding: a token id alone takes 36 of a terminal's 80 columns.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column != "PURPOSE")
    return table


def _model_option(model: str | None) -> str:
    return model_ref(model, "--model") if model else ""


# --- tokens ---------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    principal: Annotated[
        str, typer.Argument(help="Who the token is for, e.g. ci-pipeline (made a viewer if new).")
    ],
    description: Annotated[str, typer.Option("--description", help="What the token is for.")] = "",
    expires_in_days: Annotated[
        float | None,
        typer.Option(
            "--expires-in-days",
            min=0,
            help="Days until it expires (default: never).",
            show_default=False,
        ),
    ] = None,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Make a token. Its secret goes to stdout alone, once (capture it: TOKEN=$(modelreg ...))."""
    new = ap.Token(principal=principal, description=description)
    if expires_in_days is not None:
        expiry = datetime.now(UTC) + timedelta(days=expires_in_days)
        new.expire_time.FromDatetime(expiry)
    with _connect(target, timeout, token) as conn:
        created = conn.session.call(conn.service.CreateToken, asp.CreateTokenRequest(token=new))
    if json:
        print_json(created)
        return
    typer.echo(created.secret)
    expires = when(created.token.expire_time) or "never"
    typer.echo(
        f"created {created.token.name} for {created.token.principal!r} (expires {expires}); "
        "the secret above is shown only this once",
        err=True,
    )


@tokens_app.command("list")
def tokens_list(
    principal: PrincipalFilter = None,
    all_states: Annotated[
        bool, typer.Option("--all-states", help="Include revoked and expired tokens.")
    ] = False,
    all_: AllOption = False,
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List tokens, newest first (live ones only, unless --all-states). Never their secrets."""
    with _connect(target, timeout, token) as conn:
        merged: asp.ListTokensResponse = conn.session.list_pages(
            conn.service.ListTokens,
            lambda page: asp.ListTokensRequest(
                principal=principal or "",
                show_inactive=all_states,
                page_size=page_size,
                page_token=page,
            ),
            "tokens",
            all_,
            page_token,
        )
    emit(merged, json, lambda c: _token_list(c, merged.tokens, merged.next_page_token))


def _token_list(console: Console, tokens: Sequence[ap.Token], next_page_token: str) -> None:
    # Narrow enough for 80 columns: the id never folds (it is what `revoke` takes); the
    # creation time and the expiry's time of day stay in --json. PURPOSE is the description.
    now = datetime.now(UTC)
    table = _table("TOKEN", "PRINCIPAL", "STATE", "EXPIRES", "PURPOSE")
    table.columns[0].min_width = 36
    for t in tokens:
        expires = t.expire_time.ToDatetime(UTC).strftime("%Y-%m-%d") if _set(t.expire_time) else ""
        _row(
            table,
            t.name.removeprefix("tokens/"),
            t.principal,
            token_state(t, now),
            expires or "never",
            _short(t.description),
        )
    console.print(table)
    _footer(console, len(tokens), "token", next_page_token)


@tokens_app.command("revoke")
def tokens_revoke(
    token_ref: Annotated[
        str,
        typer.Argument(metavar="TOKEN_ID_OR_NAME", help="The token's id or tokens/ID."),
    ],
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke a token; every replica refuses it within 5 seconds."""
    request = asp.RevokeTokenRequest(name=token_name(token_ref))
    with _connect(target, timeout, token) as conn:
        revoked = conn.session.call(conn.service.RevokeToken, request)
    emit(
        revoked,
        json,
        lambda c: c.print(
            Text(f"revoked {revoked.name} of {revoked.principal!r}; it stops working within 5 s")
        ),
    )


# --- grants ---------------------------------------------------------------------------------


@grants_app.command("set")
def grants_set(
    principal: Annotated[str, typer.Argument(help="A principal that has a token.")],
    role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, editor, approver or admin.")],
    model: ModelOption = None,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Give PRINCIPAL the ROLE everywhere, or on --model, replacing its role there."""
    grant = ap.Grant(principal=principal, model=_model_option(model), role=parse_role(role))
    with _connect(target, timeout, token) as conn:
        held = conn.session.call(conn.service.SetGrant, asp.SetGrantRequest(grant=grant))
    emit(
        held,
        json,
        lambda c: c.print(Text(f"{held.principal} is {role_label(held.role)} {_on(held.model)}")),
    )


def _on(model: str) -> str:
    return f"on {model}" if model else "everywhere"


@grants_app.command("delete")
def grants_delete(
    principal: Annotated[str, typer.Argument(help="The principal.")],
    model: ModelOption = None,
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Remove PRINCIPAL's grant on --model, or reset its role everywhere to viewer."""
    name = _model_option(model)
    request = asp.DeleteGrantRequest(principal=principal, model=name)
    with _connect(target, timeout, token) as conn:
        empty = conn.session.call(conn.service.DeleteGrant, request)
    done = f"removed {principal}'s grant on {name}" if name else f"{principal} is viewer everywhere"
    emit(empty, json, lambda c: c.print(Text(done)))


@grants_app.command("list")
def grants_list(
    principal: PrincipalFilter = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="Only grants on this model.", show_default=False
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
    """List roles by principal: its role everywhere first, then its grants on models."""
    name = _model_option(model)
    with _connect(target, timeout, token) as conn:
        merged: asp.ListGrantsResponse = conn.session.list_pages(
            conn.service.ListGrants,
            lambda page: asp.ListGrantsRequest(
                principal=principal or "", model=name, page_size=page_size, page_token=page
            ),
            "grants",
            all_,
            page_token,
        )
    emit(merged, json, lambda c: _grant_list(c, merged.grants, merged.next_page_token))


def _grant_list(console: Console, grants: Sequence[ap.Grant], next_page_token: str) -> None:
    table = _table("PRINCIPAL", "SCOPE", "ROLE")
    for g in grants:
        _row(table, g.principal, scope_label(g.model), role_label(g.role))
    console.print(table)
    _footer(console, len(grants), "grant", next_page_token)


# --- whoami ---------------------------------------------------------------------------------


def whoami(
    target: TargetOption = client.DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Who your token stands for and the roles it holds (any valid token may ask)."""
    with _connect(target, timeout, token) as conn:
        caller = conn.session.call(conn.service.GetCaller, asp.GetCallerRequest())
    emit(caller, json, lambda c: _caller(c, caller))


def _caller(console: Console, caller: asp.Caller) -> None:
    rows: list[tuple[str, object]] = [
        ("principal", caller.principal),
        ("role everywhere", role_label(caller.role)),
    ]
    rows += [(g.model, role_label(g.role)) for g in caller.grants]
    console.print(_details(rows))


def register(app_: typer.Typer) -> None:
    """Add the `tokens` and `grants` groups and the `whoami` command to the top-level app."""
    app_.add_typer(tokens_app, name="tokens")
    app_.add_typer(grants_app, name="grants")
    app_.command("whoami", epilog=EXIT_CODES_HELP)(whoami)
