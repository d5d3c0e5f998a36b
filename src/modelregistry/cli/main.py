"""`modelreg`: the server commands (serve, migrate, dev, bootstrap-token, gc) and the client verbs
(models, versions, upload, download, artifacts, collaboration, governance and the audit log).

Server-side modules are imported inside their commands, so a client verb never loads asyncpg,
uvloop or the servicers.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from modelregistry.cli import (
    access,
    artifacts,
    bootstrap_token,
    collaboration,
    dev,
    events,
    gc,
    history,
    models,
    policy,
    versions,
)
from modelregistry.cli.common import connection_options
from modelregistry.cli.errors import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    fail,
)

app = typer.Typer(
    name="modelreg",
    help=(
        "A gRPC model registry. Run a server with `serve` (or `dev` for the embedded one), "
        "then use `models`, `versions`, `upload`, `download`, `artifacts`, `comments`, `flags`, "
        "`deployments`, `policy`, `approve`, `history`, `events`, `tokens` and `grants` against "
        "it (--target, default $MODELREG_TARGET or 127.0.0.1:50051). The connection options "
        "and --json go before the verb or after it (`modelreg --target X models list` or "
        "`modelreg models list --target X`); after it, they win."
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.callback()(connection_options)

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
        fail(f"error: {error}", EXIT_USAGE)
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
        fail(f"error: {error}", EXIT_USAGE)
    try:
        applied = asyncio.run(schema.migrate(settings.database_url))
    except schema.MigrationError as error:
        fail(f"error: {error}", EXIT_ERROR)
    except OSError as error:
        fail(f"error: cannot reach PostgreSQL: {error}", EXIT_UNAVAILABLE)
    except Exception as error:  # the driver's own errors: one line, not a traceback
        fail(f"error: migration failed: {type(error).__name__}: {error}", EXIT_ERROR)
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("the database is up to date")


dev.register(app)
artifacts.register(app)
gc.register(app)
bootstrap_token.register(app)
collaboration.register(app)
access.register(app)
events.register(app)
policy.register(app)
history.register(app)


def main() -> None:
    """Console entry point (`modelreg`)."""
    app()
