"""`modelreg gc`: one garbage-collection pass against the configured PostgreSQL and S3."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer

from modelregistry.cli.common import Connection
from modelregistry.cli.errors import EXIT_ERROR, EXIT_USAGE, fail
from modelregistry.config import ConfigError, Settings
from modelregistry.domain.errors import RegistryError

if TYPE_CHECKING:  # the server side is imported by the command that uses it (see cli.main)
    from modelregistry.service.gc import GcReport


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)


def gc(
    ctx: typer.Context,
    idle_seconds: Annotated[
        float | None,
        typer.Option(
            help="Abort uploads idle longer than this (default MODELREG_UPLOAD_IDLE_TIMEOUT_S)."
        ),
    ] = None,
    multipart_grace_seconds: Annotated[
        float,
        typer.Option(help="Abort multipart uploads no open upload owns once older than this."),
    ] = 3600.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Abort idle uploads, delete stored content that nothing references, and abort multipart
    uploads that no open upload owns (left by an abort while S3 was down).

    Configured like `serve` (MODELREG_DATABASE_URL, MODELREG_S3_*); safe to run while the registry serves.
    """  # noqa: E501
    try:
        settings = Settings.from_env().require_object_store()
    except ConfigError as error:
        fail(f"error: {error}", EXIT_USAGE)
    idle = settings.upload_idle_timeout_s if idle_seconds is None else idle_seconds
    if idle < 0 or multipart_grace_seconds < 0:
        fail("error: --idle-seconds and --multipart-grace-seconds must not be negative", EXIT_USAGE)
    try:
        report = asyncio.run(_collect(settings, idle, multipart_grace_seconds))
    except RegistryError as error:
        fail(f"error: {error.reason}: {error}", EXIT_ERROR)
    if json_output or Connection.of(ctx).json:  # `modelreg --json gc` too
        typer.echo(json.dumps(report.as_dict()))
    else:
        typer.echo(
            f"aborted {report.sessions_aborted} idle uploads, deleted {report.blobs_deleted} "
            f"unreferenced blobs and {report.orphan_objects_deleted} orphaned objects, "
            f"aborted {report.multipart_uploads_aborted} multipart uploads no upload owned, "
            f"freed {report.bytes_freed} bytes"
        )


async def _collect(settings: Settings, idle_s: float, multipart_grace_s: float) -> GcReport:
    from modelregistry.domain.models import CallContext
    from modelregistry.server import object_store_from
    from modelregistry.service.gc import GarbageCollector
    from modelregistry.storage.database import Database

    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    store = object_store_from(settings)
    try:
        ctx = CallContext(principal="gc", request_id="gc")
        return await GarbageCollector(db, store).collect(ctx, idle_s, multipart_grace_s)
    finally:
        await db.close()
        store.close()
