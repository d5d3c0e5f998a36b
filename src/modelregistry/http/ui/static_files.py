"""The UI's CSS and JavaScript, served by the app itself (no CDN: air-gapped clusters work).
Each URL carries a hash of the file's content, so browsers may keep it for a year."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import NotFound
from modelregistry.http.ui.rendering import STATIC_DIR, environment

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


def _load() -> dict[str, StaticFile]:
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.suffix in _TYPES:
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:16]
            files[path.name] = StaticFile(body, _TYPES[path.suffix], digest)
    return files


FILES = _load()


def static_url(name: str) -> str:
    return f"/static/{name}?v={FILES[name].etag}"


environment.globals["static_url"] = static_url


async def static_file(request: Request) -> Response:
    found = FILES.get(request.path_params["name"])
    if found is None:
        raise NotFound("there is no such file", reason=ErrorReason.STATIC_NOT_FOUND)
    etag = f'"{found.etag}"'
    headers = {"etag": etag}
    if request.query_params.get("v") == found.etag:
        headers["cache-control"] = "public, max-age=31536000, immutable"
    else:
        headers["cache-control"] = "public, max-age=300"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
