"""`modelreg bootstrap-token`: issue and revoke bearer tokens, straight against PostgreSQL.

Like `migrate`, it needs only MODELREG_DATABASE_URL: it is how the first admin token of a new
deployment is made. Its changes are audited with the principal `bootstrap`. Everything after
that goes over the API with `modelreg tokens` and `modelreg grants`.

It was called `modelreg token`, one letter from `modelreg tokens`; that name still works,
hidden from the help, for one more release.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from modelregistry.cli.common import Connection
from modelregistry.cli.errors import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE, fail
from modelregistry.config import ConfigError, Settings
from modelregistry.domain.access import Role
from modelregistry.domain.errors import RegistryError

if TYPE_CHECKING:  # the server side is imported by the commands that use it (see cli.main)
    from modelregistry.service.auth import IssuedToken

T = TypeVar("T")

app = typer.Typer(
    help=(
        "Bootstrap: issue and revoke bearer tokens straight in the database (needs "
        "MODELREG_DATABASE_URL), e.g. a deployment's first admin token. Audited as principal "
        "`bootstrap`. Over the API, with an admin token, use `modelreg tokens` and "
        "`modelreg grants` instead."
    )
)


NAME = "bootstrap-token"
OLD_NAME = "token"  # the name until this release; remove in the next one


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name=NAME)
    parent.add_typer(app, name=OLD_NAME, hidden=True, callback=_old_name_used)


def _old_name_used() -> None:
    # On stderr: stdout carries the secret, which scripts capture.
    print(
        f"note: `modelreg {OLD_NAME}` is now `modelreg {NAME}`; the old name goes away in the "
        "next release",
        file=sys.stderr,
    )


@app.command("create")
def create(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="Who the token is for, e.g. ci-pipeline.")],
    role: Annotated[str, typer.Option(help="viewer, editor, approver or admin.")] = "viewer",
    model: Annotated[
        str | None, typer.Option(help="Grant the role on this model only.", show_default=False)
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option(help="Days until it expires (default: never).")
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make a token and print it once; only its hash is stored."""
    try:
        parsed = Role.parse(role)
    except KeyError:
        fail("error: --role must be viewer, editor, approver or admin", EXIT_USAGE)
    expires = timedelta(days=expires_in_days) if expires_in_days is not None else None
    issued = _run(_issue(principal, parsed, model, description, expires))
    if json_output or Connection.of(ctx).json:  # `modelreg --json bootstrap-token create` too
        typer.echo(json.dumps({"token_id": issued.token_id, "token": issued.token}))
    else:
        typer.echo(issued.token)
        typer.echo(f"token id {issued.token_id} for {principal!r} ({role})", err=True)


@app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="The id `create` printed.")]) -> None:
    """Revoke a token; it stops working within seconds on every replica."""
    if not _run(_revoke(token_id)):
        fail(f"error: NOT_FOUND: no live token with id {token_id!r}", EXIT_NOT_FOUND)
    typer.echo(f"revoked {token_id}")


def _database_url() -> str:
    try:
        return Settings.from_env().database_url
    except ConfigError as error:
        fail(f"error: {error}", EXIT_USAGE)


async def _issue(
    principal: str, role: Role, model: str | None, description: str, expires: timedelta | None
) -> IssuedToken:
    from modelregistry.service.auth import BOOTSTRAP_PRINCIPAL, issue_token
    from modelregistry.storage.database import Database

    db = await Database.connect(_database_url(), min_size=1, max_size=1)
    try:
        return await issue_token(
            db, principal, role, model=model, description=description, expires_in=expires,
            audit_as=BOOTSTRAP_PRINCIPAL,
        )  # fmt: skip
    finally:
        await db.close()


async def _revoke(token_id: str) -> bool:
    from modelregistry.service.auth import BOOTSTRAP_PRINCIPAL, revoke_token
    from modelregistry.storage.database import Database

    db = await Database.connect(_database_url(), min_size=1, max_size=1)
    try:
        return await revoke_token(db, token_id, audit_as=BOOTSTRAP_PRINCIPAL)
    finally:
        await db.close()


def _run(work: Coroutine[object, object, T]) -> T:
    try:
        return asyncio.run(work)
    except RegistryError as error:
        fail(f"error: {error.reason}: {error}", EXIT_ERROR)
