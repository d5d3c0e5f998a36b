"""Artifact bytes over HTTP, streamed from the store with `Range` support (RFC 9110 §14).

Nothing here holds a file in memory: the body is the store's chunk iterator, read ahead by a
few chunks and slowed by the client's pace (the ASGI server's flow control).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelregistry.domain.names import VersionRef
from modelregistry.service.container import Services

# One range only; a multi-range request (multipart/byteranges) is answered with the whole
# representation, which RFC 9110 allows ("a server MAY ignore the Range header field").
_SINGLE_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*", re.IGNORECASE)
_MAX_DIGITS = 19  # past 2**63 a position is nonsense, and int() of a huge string is slow


@dataclass(frozen=True)
class ByteRange:
    """Bytes first..last of a representation, both included (as Content-Range writes them)."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


class RangeNotSatisfiable(Exception):
    """The Range names no byte of the representation: answer 416 with `bytes */size`."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range `header` asks for within `size` bytes, or None for the whole.

    None for no header, another unit or a multi-range (all served whole); a last position
    past the end is cut to the end; RangeNotSatisfiable when the first position is at or past
    the end, when last < first, or for an empty suffix (`bytes=-0`).
    """
    if header is None:
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if len(first_text) > _MAX_DIGITS or len(last_text) > _MAX_DIGITS:
        raise RangeNotSatisfiable
    if not first_text:
        if not last_text:
            return None  # "bytes=-": no range at all; serve the whole
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(size - suffix, 0), size - 1)
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size or last < first:
        raise RangeNotSatisfiable
    return ByteRange(first, min(last, size - 1))


# Opens the byte stream of `length` bytes from `offset`; raising a RegistryError is fine.
OpenRange = Callable[[int, int], Awaitable[AsyncIterator[bytes]]]


async def ranged_response(
    request: Request,
    size: int,
    open_range: OpenRange,
    *,
    media_type: str = "application/octet-stream",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """200 with the whole, 206 with one range, or 416; HEAD gets the headers alone.

    `open_range` is called only when a body is sent, after the Range was accepted, so a 416
    or a HEAD never touches the store.
    """
    common = {"accept-ranges": "bytes", **(headers or {})}
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**common, "content-range": f"bytes */{size}"})
    if wanted is None:
        status, offset, length = 200, 0, size
    else:
        status, offset, length = 206, wanted.first, wanted.length
    common["content-length"] = str(length)
    if wanted is not None:
        common["content-range"] = wanted.content_range(size)
    if request.method == "HEAD":
        return Response(status_code=status, headers=common, media_type=media_type)
    chunks = await open_range(offset, length)
    return StreamingResponse(chunks, status_code=status, headers=common, media_type=media_type)


async def stream_artifact(
    request: Request,
    services: Services,
    ref: VersionRef,
    path: str,
    *,
    media_type: str = "application/octet-stream",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An artifact's bytes through ArtifactService.download (same lookups and errors as the
    gRPC Download): NotFound and friends propagate to the surface's error edge."""
    artifact = await services.artifacts.get(ref, path)

    async def open_range(offset: int, length: int) -> AsyncIterator[bytes]:
        _, chunks = await services.artifacts.download(ref, path, offset, length)
        return chunks

    return await ranged_response(
        request,
        artifact.size_bytes,
        open_range,
        media_type=media_type,
        headers={"etag": f'"{artifact.sha256}"', **(headers or {})},
    )
