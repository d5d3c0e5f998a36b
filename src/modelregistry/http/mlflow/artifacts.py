"""MLflow's artifact API (`/api/2.0/mlflow-artifacts/artifacts`) over the files of versions,
so MLflow's own HttpArtifactRepository reads and writes them.

An artifact path is `models/<model id>/<version>/<file path>`; get-download-uri hands out
exactly that space (as an absolute URL), so `models:/<name>@<alias>` loads from here.

* `GET artifacts?path=<p>` lists the entries directly under `p`, with paths relative to `p`;
  a file, a missing path or anything above a version answers `{}` (MLflow's client treats a
  404 here as a failure of a single-file download).
* `GET artifacts/<path>` streams the file (with Range) through ArtifactService.
* `PUT artifacts/<path>` streams the body into the same resumable, verified,
  content-addressed upload as ArtifactService.Write: the server computes the sha256, known
  content is stored once, the version is PENDING until the file is committed, and no more
  than a chunk of the body is held in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelregistry.domain.artifacts import Artifact, UploadState
from modelregistry.domain.errors import InvalidArgument, NotFound
from modelregistry.domain.names import MODEL_ID_PATTERN, VersionRef, parse_version_segment
from modelregistry.http.auth import authenticate
from modelregistry.http.context import services_of
from modelregistry.http.mlflow.registry import ARTIFACT_SPACE
from modelregistry.http.streaming import stream_artifact
from modelregistry.service.upload_writer import WriteChunk

# Bytes handed to the upload writer per chunk: the body arrives in small ASGI messages.
CHUNK_BYTES = 1 << 20
_LIST_PAGE = 1000


def _version_path(path: str) -> tuple[VersionRef, str] | None:
    """`models/<id>/<version>[/<file path>]` → (version, file path); None above a version."""
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[0] != ARTIFACT_SPACE or not MODEL_ID_PATTERN.fullmatch(parts[1]):
        return None
    segment = parts[2]
    if not (segment.isascii() and segment.isdigit()):
        return None
    ref = parse_version_segment(parts[1], segment, "path")
    return ref, parts[3] if len(parts) == 4 else ""


def _file_path(path: str) -> tuple[VersionRef, str]:
    located = _version_path(path)
    if located is None or not located[1]:
        raise InvalidArgument.for_field(
            "path",
            f"{path!r} does not name a file of a version: expected "
            f"{ARTIFACT_SPACE}/<model id>/<version>/<file path>",
        )
    return located


async def list_artifacts(request: Request) -> Response:
    await authenticate(request)
    path = request.query_params.get("path", "")
    if "\x00" in path:
        raise InvalidArgument.for_field("path", "must not contain NUL characters")
    located = _version_path(path)
    if located is None:
        return JSONResponse({})
    ref, prefix = located
    prefix = prefix.strip("/")
    try:
        artifacts = await _all_artifacts(request, ref)
    except NotFound:
        return JSONResponse({})
    under = f"{prefix}/" if prefix else ""
    files: dict[str, dict[str, Any]] = {}
    for artifact in artifacts:
        if not artifact.path.startswith(under):
            continue
        rest = artifact.path[len(under) :]
        child, slash, _ = rest.partition("/")
        if slash:
            files.setdefault(child, {"path": child, "is_dir": True})
        else:
            files[child] = {"path": child, "is_dir": False, "file_size": artifact.size_bytes}
    if not files:
        return JSONResponse({})
    return JSONResponse({"files": [files[name] for name in sorted(files)]})


async def _all_artifacts(request: Request, ref: VersionRef) -> list[Artifact]:
    services = services_of(request)
    found: list[Artifact] = []
    token = ""
    while True:
        page = await services.artifacts.list(ref, _LIST_PAGE, token)
        found.extend(page.items)
        token = page.next_page_token
        if not token:
            return found


async def download_artifact(request: Request) -> Response:
    await authenticate(request)
    ref, path = _file_path(request.path_params["path"])
    return await stream_artifact(request, services_of(request), ref, path)


async def upload_artifact(request: Request) -> Response:
    ctx = await authenticate(request)
    ref, path = _file_path(request.path_params["path"])
    services = services_of(request)
    size = _content_length(request)
    content_type = request.headers.get("content-type", "")[:255]
    session = await services.artifacts.start_upload(ctx, ref, path, size, "", content_type)
    try:
        await services.artifacts.write(ctx, _chunks(request, session.id))
    except BaseException:
        # No one resumes an HTTP PUT: end the session so the version is not left PENDING.
        current = await services.artifacts.query_upload(session.id)
        if current.state == UploadState.ACTIVE:
            await services.artifacts.abort_upload(ctx, session.id)
        raise
    return JSONResponse({})


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InvalidArgument.for_field("Content-Length", f"{value!r} is not a byte count")
    return int(value)


async def _chunks(request: Request, upload_id: str) -> AsyncIterator[WriteChunk]:
    offset = 0
    pending = bytearray()
    try:
        async for data in request.stream():
            pending += data
            if len(pending) >= CHUNK_BYTES:
                chunk = bytes(pending)
                pending.clear()
                yield WriteChunk(upload_id, offset, chunk, finish=False)
                offset += len(chunk)
    except ClientDisconnect:
        raise InvalidArgument.for_field(
            "body", "the client went away before the whole body arrived; nothing was stored"
        ) from None
    yield WriteChunk(upload_id, offset, bytes(pending), finish=True)


def artifact_routes() -> list[BaseRoute]:
    return [
        Route("/artifacts", list_artifacts, methods=["GET"]),
        Route("/artifacts/{path:path}", download_artifact, methods=["GET", "HEAD"]),
        Route("/artifacts/{path:path}", upload_artifact, methods=["PUT"]),
    ]
