"""`modelreg tokens|grants|whoami`: bearer tokens and roles, over AccessService.

These verbs go through the API with the caller's token (admin for all but `whoami`); the
DB-direct `modelreg bootstrap-token create|revoke` is how a deployment gets its first admin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.text import Text

from modelregistry.cli.common import (
    ClientCommand,
    ClientTyper,
    Connection,
    ListCommand,
    call_command,
    list_command,
    model_ref,
    print_json,
)
from modelregistry.cli.errors import EXIT_CODES_HELP
from modelregistry.cli.parsing import parse_choice
from modelregistry.cli.render import add_row, details_table, list_table, page_footer, shorten, when
from modelregistry.v1 import access_pb2 as ap
from modelregistry.v1 import access_service_pb2 as asp
from modelregistry.v1.access_service_pb2_grpc import AccessServiceStub

_ADMIN_NOTE = "Needs a token with the admin role everywhere."

tokens_app = ClientTyper(
    name="tokens",
    help=(
        "Make, list and revoke bearer tokens over the API. " + _ADMIN_NOTE + " (The first "
        "admin token of a deployment comes from `modelreg bootstrap-token create`, against the "
        "database.)"
    ),
)
grants_app = ClientTyper(
    name="grants",
    help=(
        "Give principals roles everywhere or on one model, list and remove them. "
        "Roles: viewer < editor < approver < admin. " + _ADMIN_NOTE
    ),
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


def parse_role(raw: str) -> ap.Role.ValueType:
    """`editor`, `EDITOR` or `ROLE_EDITOR` → the enum value; anything else is exit 2."""
    return parse_choice(raw, _ROLES, "role_", "ROLE")


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


def _model_option(model: str | None) -> str:
    return model_ref(model, "--model") if model else ""


# --- tokens ---------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
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
) -> None:
    """Make a token. Its secret goes to stdout alone, once (capture it: TOKEN=$(modelreg ...))."""
    new = ap.Token(principal=principal, description=description)
    if expires_in_days is not None:
        expiry = datetime.now(UTC) + timedelta(days=expires_in_days)
        new.expire_time.FromDatetime(expiry)
    connection = Connection.of(ctx)
    with connection.open(AccessServiceStub) as api:
        created = api.call(api.stub.CreateToken, asp.CreateTokenRequest(token=new))
    if connection.json:
        print_json(created)
        return
    typer.echo(created.secret)
    expires = when(created.token.expire_time) or "never"
    typer.echo(
        f"created {created.token.name} for {created.token.principal!r} (expires {expires}); "
        "the secret above is shown only this once",
        err=True,
    )


@tokens_app.command("list", cls=ListCommand)
def tokens_list(
    ctx: typer.Context,
    principal: PrincipalFilter = None,
    all_states: Annotated[
        bool, typer.Option("--all-states", help="Include revoked and expired tokens.")
    ] = False,
) -> None:
    """List tokens, newest first (live ones only, unless --all-states). Never their secrets."""
    list_command(
        ctx,
        AccessServiceStub,
        lambda s: s.ListTokens,
        asp.ListTokensRequest(principal=principal or "", show_inactive=all_states),
        "tokens",
        _token_list,
    )


def _token_list(console: Console, tokens: Sequence[ap.Token], next_page_token: str) -> None:
    # Narrow enough for 80 columns: the id never folds (it is what `revoke` takes); the
    # creation time and the expiry's time of day stay in --json. PURPOSE is the description.
    now = datetime.now(UTC)
    # Collapsed padding: a token id alone takes 36 of a terminal's 80 columns.
    table = list_table("TOKEN", "PRINCIPAL", "STATE", "EXPIRES", "PURPOSE", collapse_padding=True)
    table.columns[0].min_width = 36
    for t in tokens:
        expires = t.expire_time.ToDatetime(UTC).strftime("%Y-%m-%d") if _set(t.expire_time) else ""
        add_row(
            table,
            t.name.removeprefix("tokens/"),
            t.principal,
            token_state(t, now),
            expires or "never",
            shorten(t.description),
        )
    console.print(table)
    page_footer(console, len(tokens), "token", next_page_token)


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_ref: Annotated[
        str,
        typer.Argument(metavar="TOKEN_ID_OR_NAME", help="The token's id or tokens/ID."),
    ],
) -> None:
    """Revoke a token; every replica refuses it within 5 seconds."""
    call_command(
        ctx,
        AccessServiceStub,
        lambda s: s.RevokeToken,
        asp.RevokeTokenRequest(name=token_name(token_ref)),
        lambda c, revoked: c.print(
            Text(f"revoked {revoked.name} of {revoked.principal!r}; it stops working within 5 s")
        ),
    )


# --- grants ---------------------------------------------------------------------------------


@grants_app.command("set")
def grants_set(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="A principal that has a token.")],
    role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, editor, approver or admin.")],
    model: ModelOption = None,
) -> None:
    """Give PRINCIPAL the ROLE everywhere, or on --model, replacing its role there."""
    grant = ap.Grant(principal=principal, model=_model_option(model), role=parse_role(role))
    call_command(
        ctx,
        AccessServiceStub,
        lambda s: s.SetGrant,
        asp.SetGrantRequest(grant=grant),
        lambda c, held: c.print(
            Text(f"{held.principal} is {role_label(held.role)} {_on(held.model)}")
        ),
    )


def _on(model: str) -> str:
    return f"on {model}" if model else "everywhere"


@grants_app.command("delete")
def grants_delete(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="The principal.")],
    model: ModelOption = None,
) -> None:
    """Remove PRINCIPAL's grant on --model, or reset its role everywhere to viewer."""
    name = _model_option(model)
    request = asp.DeleteGrantRequest(principal=principal, model=name)
    done = f"removed {principal}'s grant on {name}" if name else f"{principal} is viewer everywhere"
    call_command(
        ctx, AccessServiceStub, lambda s: s.DeleteGrant, request, lambda c, _: c.print(Text(done))
    )


@grants_app.command("list", cls=ListCommand)
def grants_list(
    ctx: typer.Context,
    principal: PrincipalFilter = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="Only grants on this model.", show_default=False
        ),
    ] = None,
) -> None:
    """List roles by principal: its role everywhere first, then its grants on models."""
    list_command(
        ctx,
        AccessServiceStub,
        lambda s: s.ListGrants,
        asp.ListGrantsRequest(principal=principal or "", model=_model_option(model)),
        "grants",
        _grant_list,
    )


def _grant_list(console: Console, grants: Sequence[ap.Grant], next_page_token: str) -> None:
    table = list_table("PRINCIPAL", "SCOPE", "ROLE", collapse_padding=True)
    for g in grants:
        add_row(table, g.principal, scope_label(g.model), role_label(g.role))
    console.print(table)
    page_footer(console, len(grants), "grant", next_page_token)


# --- whoami ---------------------------------------------------------------------------------


def whoami(ctx: typer.Context) -> None:
    """Who your token stands for and the roles it holds (any valid token may ask)."""
    call_command(ctx, AccessServiceStub, lambda s: s.GetCaller, asp.GetCallerRequest(), _caller)


def _caller(console: Console, caller: asp.Caller) -> None:
    rows: list[tuple[str, object]] = [
        ("principal", caller.principal),
        ("role everywhere", role_label(caller.role)),
    ]
    rows += [(g.model, role_label(g.role)) for g in caller.grants]
    console.print(details_table(rows))


def register(app_: typer.Typer) -> None:
    """Add the `tokens` and `grants` groups and the `whoami` command to the top-level app."""
    app_.add_typer(tokens_app, name="tokens")
    app_.add_typer(grants_app, name="grants")
    app_.command("whoami", cls=ClientCommand, epilog=EXIT_CODES_HELP)(whoami)
