"""`modelreg upload`, `modelreg download` and `modelreg artifacts ...`: a version's files.

Transfers go through modelregistry.transfer (resumable uploads, parallel verified downloads).
Progress bars go to stderr, so `--json` output on stdout stays clean; they are off with
--no-progress or when stderr is not a terminal. --timeout bounds each unary call; the data
streams have no deadline (a broken one is resumed instead).
"""

from __future__ import annotations

import json as json_module
import mimetypes
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from modelregistry import client, transfer
from modelregistry.cli.common import (
    ClientCommand,
    ClientTyper,
    Connection,
    ListCommand,
    Paging,
    Session,
    call_command,
    emit,
    list_command,
    out,
    usage_error,
    version_ref,
)
from modelregistry.cli.errors import EXIT_NOT_FOUND, fail, fail_rpc, format_rpc_error
from modelregistry.cli.render import human_size
from modelregistry.v1 import (
    artifact_pb2,
    artifact_service_pb2,
    artifact_service_pb2_grpc,
    model_version_pb2,
)
from modelregistry.v1 import registry_service_pb2 as rs

app = ClientTyper(
    name="artifacts",
    help="List, show and delete a version's files (see also `upload` and `download`).",
)

VersionArg = Annotated[
    str,
    typer.Argument(
        metavar="VERSION", help="MODEL/VERSION or models/MODEL/versions/VERSION (number or alias)."
    ),
]
ArtifactArg = Annotated[
    str,
    typer.Argument(
        metavar="ARTIFACT",
        help="MODEL/VERSION/PATH or models/MODEL/versions/VERSION/artifacts/PATH.",
    ),
]
NoProgressOption = Annotated[
    bool,
    typer.Option(
        "--no-progress",
        help="No progress bars (they go to stderr, and only when it is a terminal).",
    ),
]


# --- shared ---------------------------------------------------------------------------------


@contextmanager
def _transfer_errors(target: str) -> Iterator[None]:
    """A failed transfer as one line on stderr and the exit code of its cause."""
    try:
        yield
    except transfer.TransfersFailed as error:
        # One line per failed file, then the exit code of the first failure's cause.
        for path, cause in error.failures.items():
            message = _one_line(cause, target)
            named = message if path in message else f"{path}: {message}"
            print(f"error: {named}", file=sys.stderr)
        first = error.first
        if isinstance(first, grpc.RpcError):
            fail_rpc(first, target)
        fail(f"error: {error}")
    except grpc.RpcError as error:
        fail_rpc(error, target)
    except (transfer.TransferError, transfer.UnsafePath) as error:
        fail(f"error: {error}")
    except OSError as error:
        fail(f"error: {error.filename or ''}: {error.strerror or error}")


def _one_line(error: BaseException, target: str) -> str:
    if isinstance(error, grpc.RpcError):
        return format_rpc_error(error, target).removeprefix("error: ")
    if isinstance(error, OSError):
        return f"{error.filename or ''}: {error.strerror or error}"
    return str(error)


def artifact_name(ref: str) -> str:
    """`m/3/weights/a.bin` or `models/m/versions/3/artifacts/weights/a.bin` → the name."""
    if ref.startswith("models/"):
        parts = ref.split("/", 5)
        if len(parts) == 6 and parts[2] == "versions" and parts[4] == "artifacts" and all(parts):
            return ref
    else:
        parts = ref.split("/", 2)
        if len(parts) == 3 and all(parts):
            return f"models/{parts[0]}/versions/{parts[1]}/artifacts/{parts[2]}"
    raise usage_error(
        f"{ref!r} does not name an artifact: use MODEL/VERSION/PATH or "
        "models/MODEL/versions/VERSION/artifacts/PATH",
        "ARTIFACT",
    )


class _FilesDisplay:
    """One combined progress display on stderr for files moving at once.

    A total line (files finished, bytes, rate, ETA over every file) and a line per active file
    (hashing or moving), removed when that file is done. Disabled, or when stderr is not a
    terminal, it shows nothing. Called from the transfer threads: rich's Progress locks.
    """

    def __init__(self, enabled: bool, verb: str, sizes: Sequence[int]) -> None:
        console = Console(stderr=True)
        self._verb = verb
        self._count = len(sizes)
        self._finished = 0
        self._moved: dict[str, int] = {}
        self._lines: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        if enabled and console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._total = self._progress.add_task(self._total_label(), total=sum(sizes))

    def _total_label(self) -> str:
        return f"{self._verb} {self._finished}/{self._count} files"

    def __enter__(self) -> _FilesDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @property
    def callback(self) -> transfer.FilesProgress | None:
        return self.update if self._progress is not None else None

    def update(self, path: str, phase: str, done: int, size: int) -> None:
        progress = self._progress
        if progress is None:
            return
        with self._lock:
            line = self._lines.get(path)
            if phase == "done":
                self._finished += 1
                self._moved[path] = size
                if line is not None:
                    progress.remove_task(line)
                    del self._lines[path]
            else:
                if phase != "hash":
                    self._moved[path] = done
                label = f"  {phase} {path}"
                if line is None:
                    self._lines[path] = progress.add_task(label, total=size, completed=done)
                else:
                    progress.update(line, description=label, completed=done, total=size)
            progress.update(
                self._total,
                description=self._total_label(),
                completed=sum(self._moved.values()),
            )


ParallelOption = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        max=32,
        help="Files moving at once (each resumes on its own if its stream breaks).",
    ),
]


def _artifact_table(console: Console, artifacts: Sequence[artifact_pb2.Artifact]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("PATH", "SIZE", "SHA256", "TYPE", "FORMAT"):
        table.add_column(column, no_wrap=column != "PATH", overflow="fold")
    for a in artifacts:
        table.add_row(
            Text(a.path),
            Text(human_size(a.size_bytes)),
            Text(a.sha256[:16]),
            Text(a.content_type),
            Text(a.summary.format),
        )
    console.print(table)


# --- upload ---------------------------------------------------------------------------------


def upload_targets(path: str, files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(local file, path in the version) pairs: PATH itself for one FILE, else PATH/basename.

    One FILE with PATH ending in `/` also goes to PATH/basename; PATH `.` is the version's
    top level.
    """
    prefix = "" if path in (".", "./") else path.rstrip("/")
    if len(files) == 1 and not path.endswith("/") and path not in (".", "./"):
        return [(files[0], path)]
    pairs = [(f, f"{prefix}/{f.name}" if prefix else f.name) for f in files]
    seen: set[str] = set()
    for _, dest in pairs:
        if dest in seen:
            raise usage_error(f"two files would both be uploaded as {dest!r}", "FILE")
        seen.add(dest)
    return pairs


def upload(
    ctx: typer.Context,
    version: VersionArg,
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="Path in the version for one FILE; a directory prefix for several FILEs.",
        ),
    ],
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            help="Local files; several go under PATH by their base names.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    content_type: Annotated[
        str | None,
        typer.Option(
            "--content-type", help="Default: guessed from the file name.", show_default=False
        ),
    ] = None,
    no_digest: Annotated[
        bool,
        typer.Option(
            "--no-digest",
            help="Do not hash each file before sending it (then content the registry "
            "already holds is sent again; the server still hashes it).",
        ),
    ] = False,
    parallel: ParallelOption = transfer.DEFAULT_PARALLEL_FILES,
    no_progress: NoProgressOption = False,
) -> None:
    """Upload FILEs into a version in DEVELOPMENT, several at once, resuming broken streams.

    `modelreg upload llama/3 config.json ./config.json` stores one file as config.json;
    `modelreg upload llama/3 weights ./shard-*.safetensors` stores each as weights/NAME,
    --parallel of them at a time (default 4). Each file is hashed first, so content the
    registry already holds is not sent again. If some files fail, the others still complete;
    each failure is named on stderr.
    """
    name = version_ref([version], "VERSION")
    pairs = upload_targets(path, files)
    items = [
        transfer.UploadItem(local, dest, content_type or mimetypes.guess_type(local.name)[0])
        for local, dest in pairs
    ]
    connection = Connection.of(ctx)
    sizes = [local.stat().st_size for local, _ in pairs]
    with (
        connection.open(artifact_service_pb2_grpc.ArtifactServiceStub) as api,
        _transfer_errors(connection.target),
        _FilesDisplay(not no_progress, "upload", sizes) as display,
    ):
        uploaded = transfer.upload_files(
            api.stub,
            name,
            items,
            parallel=parallel,
            declare_sha256=not no_digest,
            progress=display.callback,
            timeout=connection.timeout,
        )
    result = artifact_service_pb2.ListArtifactsResponse(artifacts=uploaded)
    emit(result, connection.json, lambda console: _artifact_table(console, uploaded))


# --- download -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wanted:
    path: str
    size_bytes: int
    sha256: str  # from the manifest, or "" when there is none


def select(entries: Sequence[_Wanted], path: str | None) -> list[_Wanted]:
    """Every entry, or the one at `path`, or those under the directory `path`."""
    if path is None:
        return list(entries)
    prefix = path.rstrip("/") + "/"
    return [e for e in entries if e.path == path or e.path.startswith(prefix)]


def download(
    ctx: typer.Context,
    version: VersionArg,
    path: Annotated[
        str | None,
        typer.Argument(
            metavar="[PATH]",
            help="One file, or a directory of the version; omit for every file.",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Where files go (made if missing).")
    ] = Path("."),
    streams: Annotated[
        int,
        typer.Option("--streams", min=1, max=32, help="Parallel ranges for files above 64 MiB."),
    ] = transfer.DEFAULT_STREAMS,
    parallel: ParallelOption = transfer.DEFAULT_PARALLEL_FILES,
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            help="Read the bytes straight from the object store through short-lived "
            "presigned URLs (the store must be reachable from here; one stream per file, "
            "--streams does not apply); still verified.",
        ),
    ] = False,
    no_progress: NoProgressOption = False,
) -> None:
    """Download a version's files into DIR, keeping their relative paths, and verify them.

    For a READY version every file is checked against the version's manifest (SHA-256 and
    size) and the manifest against its digest, which is printed; a file that does not match
    is not kept. A file is written to a temporary name and renamed into place only once
    verified. Paths that would land outside DIR are refused before anything is written.
    --parallel files come down at once; with --direct they are read from the object store
    itself (GetArtifactDownloadUrl) instead of through the registry.
    """
    name = version_ref([version], "VERSION")
    connection = Connection.of(ctx)
    with (
        connection.open(artifact_service_pb2_grpc.ArtifactServiceStub) as api,
        _transfer_errors(connection.target),
    ):
        found = api.call(api.registry.GetModelVersion, rs.GetModelVersionRequest(name=name))
        if found.manifest:
            digest = transfer.manifest_digest(found.manifest)
            if digest != found.manifest_digest:
                fail(
                    f"error: the manifest of {found.name} does not match its digest "
                    f"({digest} computed, {found.manifest_digest} given)"
                )
            entries = [_Wanted(e.path, e.size_bytes, e.sha256) for e in found.manifest]
        else:
            if found.status != model_version_pb2.MODEL_VERSION_STATUS_READY:
                print(
                    f"warning: {client.short_version(found.name)} is not READY (uploads are "
                    "open): it has no manifest, each file is checked against its own SHA-256",
                    file=sys.stderr,
                )
            entries = [_Wanted(a.path, a.size_bytes, "") for a in _list_all(api, found.name)]
        wanted = select(entries, path)
        if not wanted and path is not None:
            fail(f"error: no artifact {path!r} in {found.name}", EXIT_NOT_FOUND)
        destinations = [transfer.safe_destination(out_dir, w.path) for w in wanted]
        items = [
            transfer.DownloadItem(f"{found.name}/artifacts/{w.path}", dest, w.sha256 or None)
            for w, dest in zip(wanted, destinations, strict=True)
        ]
        with _FilesDisplay(not no_progress, "download", [w.size_bytes for w in wanted]) as bars:
            artifacts = transfer.download_files(
                api.stub,
                items,
                parallel=parallel,
                direct=direct,
                streams=streams,
                progress=_by_path(bars.callback, found.name),
                timeout=connection.timeout,
            )
        files: list[dict[str, Any]] = [
            {
                "path": artifact.path or w.path,
                "sizeBytes": str(artifact.size_bytes),
                "sha256": artifact.sha256,
                "file": str(dest),
            }
            for artifact, w, dest in zip(artifacts, wanted, destinations, strict=True)
        ]
    verified = bool(found.manifest)
    if connection.json:
        document = {
            "modelVersion": found.name,
            "manifestDigest": found.manifest_digest,
            "manifestVerified": verified,
            "files": files,
        }
        typer.echo(json_module.dumps(document, indent=2, sort_keys=True))
        return
    console = out()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("PATH", "SIZE", "SHA256", "FILE"):
        table.add_column(column, no_wrap=column in ("SIZE", "SHA256"), overflow="fold")
    for f in files:
        table.add_row(
            Text(f["path"]),
            Text(human_size(int(f["sizeBytes"]))),
            Text(f["sha256"][:16]),
            Text(f["file"]),
        )
    console.print(table)
    if verified:
        console.print(
            Text(f"manifest {found.manifest_digest} verified: {len(files)} file(s) match")
        )
    else:
        console.print(Text(f"{len(files)} file(s) verified against their SHA-256"))


def _by_path(
    callback: transfer.FilesProgress | None, version: str
) -> transfer.FilesProgress | None:
    """Progress keyed by the path in the version rather than the artifact's full name."""
    if callback is None:
        return None
    prefix = f"{version}/artifacts/"
    report = callback
    return lambda name, phase, done, size: report(name.removeprefix(prefix), phase, done, size)


def _list_all(
    api: Session[artifact_service_pb2_grpc.ArtifactServiceStub], parent: str
) -> list[artifact_pb2.Artifact]:
    merged: artifact_service_pb2.ListArtifactsResponse = api.list_pages(
        api.stub.ListArtifacts,
        artifact_service_pb2.ListArtifactsRequest(parent=parent),
        "artifacts",
        Paging(page_size=1000, all_pages=True),
    )
    return list(merged.artifacts)


# --- artifacts list / get / delete ------------------------------------------------------------


@app.command("list", cls=ListCommand)
def list_(
    ctx: typer.Context,
    version: VersionArg,
) -> None:
    """List a version's files by path (one page, or every page with --all)."""
    list_command(
        ctx,
        artifact_service_pb2_grpc.ArtifactServiceStub,
        lambda s: s.ListArtifacts,
        artifact_service_pb2.ListArtifactsRequest(parent=version_ref([version], "VERSION")),
        "artifacts",
        _artifact_page,
    )


def _artifact_page(
    console: Console, artifacts: Sequence[artifact_pb2.Artifact], next_page_token: str
) -> None:
    _artifact_table(console, artifacts)
    if next_page_token:
        console.print(Text(f"more: --page-token {next_page_token}"))


@app.command("get")
def get(ctx: typer.Context, artifact: ArtifactArg) -> None:
    """Show one file's metadata (size, SHA-256, recognised format)."""
    call_command(
        ctx,
        artifact_service_pb2_grpc.ArtifactServiceStub,
        lambda s: s.GetArtifact,
        artifact_service_pb2.GetArtifactRequest(name=artifact_name(artifact)),
        _artifact_detail,
    )


def _artifact_detail(console: Console, found: artifact_pb2.Artifact) -> None:
    table = Table(box=box.SIMPLE, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows = [
        ("name", found.name),
        ("size", f"{found.size_bytes} bytes ({human_size(found.size_bytes)})"),
        ("sha256", found.sha256),
        ("content type", found.content_type),
        ("format", found.summary.format),
        *sorted(found.summary.properties.items()),
    ]
    for key, value in rows:
        if value:
            table.add_row(Text(key), Text(value))
    console.print(table)


@app.command("delete")
def delete(ctx: typer.Context, artifact: ArtifactArg) -> None:
    """Delete a file from a version in DEVELOPMENT."""
    name = artifact_name(artifact)
    call_command(
        ctx,
        artifact_service_pb2_grpc.ArtifactServiceStub,
        lambda s: s.DeleteArtifact,
        artifact_service_pb2.DeleteArtifactRequest(name=name),
        lambda console, _: console.print(Text(f"deleted {name}")),
    )


def register(app_: typer.Typer) -> None:
    """Add `upload`, `download` and the `artifacts` group to the top-level app."""
    app_.command("upload", cls=ClientCommand)(upload)
    app_.command("download", cls=ClientCommand)(download)
    app_.add_typer(app, name="artifacts")
