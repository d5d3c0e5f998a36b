"""`modelreg`: the server commands (serve, migrate, dev, token, gc) and the client verbs (models,
versions, upload, download, artifacts, collaboration, governance and the audit log).

Server-side modules are imported inside their commands, so a client verb never loads asyncpg,
uvloop or the servicers.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, NoReturn

import typer

from modelregistry.cli import (
    access_commands,
    artifacts,
    collaboration,
    dev_command,
    events,
    gc_command,
    models,
    policy_commands,
    token_command,
    versions,
)
from modelregistry.cli.common import TlsCaOption, TlsCertOption, TlsKeyOption, use_tls_options
from modelregistry.cli.errors import EXIT_CODES_HELP, EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE

app = typer.Typer(
    name="modelreg",
    help=(
        "A gRPC model registry. Run a server with `serve` (or `dev` for the embedded one), "
        "then use `models`, `versions`, `upload`, `download`, `artifacts`, `comments`, `flags`, "
        "`deployments`, `policy`, `approve`, `history`, `events`, `tokens` and `grants` against "
        "it (--target, default $MODELREG_TARGET or 127.0.0.1:50051). Every client verb takes "
        "--json."
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def connection_options(
    tls_ca: TlsCaOption = None, tls_cert: TlsCertOption = None, tls_key: TlsKeyOption = None
) -> None:
    """Options that apply to the connection of every client verb."""
    use_tls_options(tls_ca, tls_cert, tls_key)


app.add_typer(models.app, name="models")
app.add_typer(versions.app, name="versions")


@app.command("serve")
def serve(
    listen: Annotated[
        str | None,
        typer.Option(
            help="host:port to listen on (overrides MODELREG_LISTEN).", show_default=False
        ),
    ] = None,
) -> None:
    """Run the gRPC server, configured by MODELREG_* environment variables."""
    from modelregistry import server
    from modelregistry.config import ConfigError, Settings

    try:
        settings = Settings.from_env(listen=listen).require_object_store()
        server.run(settings)
    except ConfigError as error:
        _fail(f"error: {error}", EXIT_USAGE)
    except KeyboardInterrupt:
        pass


@app.command("migrate")
def migrate(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL DSN (overrides MODELREG_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Apply pending database migrations (safe to run from many replicas at once)."""
    from modelregistry.config import ConfigError, Settings
    from modelregistry.storage import migrate as schema

    try:
        settings = Settings.from_env(database_url=database_url)
    except ConfigError as error:
        _fail(f"error: {error}", EXIT_USAGE)
    try:
        applied = asyncio.run(schema.migrate(settings.database_url))
    except schema.MigrationError as error:
        _fail(f"error: {error}", EXIT_ERROR)
    except OSError as error:
        _fail(f"error: cannot reach PostgreSQL: {error}", EXIT_UNAVAILABLE)
    except Exception as error:  # the driver's own errors: one line, not a traceback
        _fail(f"error: migration failed: {type(error).__name__}: {error}", EXIT_ERROR)
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("the database is up to date")


def _fail(message: str, code: int) -> NoReturn:
    print(" ".join(message.split()), file=sys.stderr)
    raise typer.Exit(code)


dev_command.register(app)
artifacts.register(app)
gc_command.register(app)
token_command.register(app)
collaboration.register(app)
access_commands.register(app)
events.register(app)
policy_commands.register(app)


def main() -> None:
    """Console entry point (`modelreg`)."""
    app()
