"""`modelreg dev`: the embedded default (PostgreSQL + SeaweedFS children, then the server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelregistry.cli.errors import EXIT_ERROR, EXIT_USAGE, fail

# Exit status of a process ended by Ctrl-C, as shells report it.
EXIT_INTERRUPTED = 130


def register(app: typer.Typer) -> None:
    app.command("dev")(dev)


def dev(
    data_dir: Annotated[
        Path, typer.Option(envvar="MODELREG_DEV_DATA_DIR", help="Where all data lives.")
    ] = Path(".modelreg"),
    listen: Annotated[
        str, typer.Option(envvar="MODELREG_LISTEN", help="host:port the gRPC server listens on.")
    ] = "127.0.0.1:50051",
    http_listen: Annotated[
        str,
        typer.Option(
            envvar="MODELREG_HTTP_LISTEN",
            help="host:port of the HTTP edge (web UI, MLflow, OCI); empty for none.",
        ),
    ] = "127.0.0.1:8080",
    postgres_port: Annotated[
        int, typer.Option(envvar="MODELREG_DEV_POSTGRES_PORT", help="PostgreSQL port.")
    ] = 15432,
    s3_port: Annotated[
        int, typer.Option(envvar="MODELREG_DEV_S3_PORT", help="SeaweedFS S3 port.")
    ] = 18333,
    master_port: Annotated[
        int, typer.Option(envvar="MODELREG_DEV_MASTER_PORT", help="SeaweedFS master port.")
    ] = 19333,
    volume_port: Annotated[
        int, typer.Option(envvar="MODELREG_DEV_VOLUME_PORT", help="SeaweedFS volume port.")
    ] = 18080,
    filer_port: Annotated[
        int, typer.Option(envvar="MODELREG_DEV_FILER_PORT", help="SeaweedFS filer port.")
    ] = 18888,
) -> None:
    """Run PostgreSQL, SeaweedFS and the server on this machine, data under --data-dir.

    Each SeaweedFS service also opens a gRPC port at its port + 10000; keep every port
    below 32768. Stop with Ctrl-C: every child process stops with it.
    """
    from modelregistry.config import ConfigError
    from modelregistry.embedded.dev import DevOptions, run_dev
    from modelregistry.embedded.locking import DataDirInUse
    from modelregistry.embedded.process import EmbeddedStartError
    from modelregistry.embedded.seaweed import SeaweedPorts

    try:
        options = DevOptions(
            data_dir=data_dir,
            listen=listen,
            http_listen=http_listen,
            postgres_port=postgres_port,
            seaweed_ports=SeaweedPorts(
                s3=s3_port, master=master_port, volume=volume_port, filer=filer_port
            ),
        )
    except ValueError as error:
        fail(f"error: {error}", EXIT_USAGE, one_line=False)
    try:
        run_dev(options)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ConfigError as error:
        fail(f"error: {error}", EXIT_USAGE, one_line=False)
    except (DataDirInUse, EmbeddedStartError) as error:
        fail(f"error: {error}", EXIT_ERROR, one_line=False)
