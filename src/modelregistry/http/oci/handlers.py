"""The pull side of the OCI Distribution API v1.1 over the registry's use cases.

A pull of a DEVELOPMENT version that is READY (no upload open) gets the manifest of its files
as they are at that moment: a deployment that pins the digest keeps getting exactly those
files, or MANIFEST_UNKNOWN once someone changes them (they may, until the version leaves
DEVELOPMENT). A version with uploads open has no manifest yet (MANIFEST_UNKNOWN).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import InvalidArgument, NotFound
from modelregistry.domain.names import MODEL_ID_PATTERN
from modelregistry.domain.oci import IMAGE_MANIFEST, OciManifest
from modelregistry.http.auth import token_from
from modelregistry.http.context import services_of, settings_of
from modelregistry.http.oci.auth import caller
from modelregistry.http.oci.errors import CATALOG_SCOPE, unsupported_push
from modelregistry.http.oci.references import parse_digest, parse_name, parse_reference
from modelregistry.http.streaming import ranged_response

READ_METHODS = ("GET", "HEAD")
API_VERSION = {"docker-distribution-api-version": "registry/2.0"}
DEFAULT_PAGE = 100
MAX_PAGE = 1000
_MAX_SCOPES = 32
_MAX_LAST = 256
# What a client must accept to get our manifests: the type itself or a wildcard covering it.
_ACCEPTABLE = frozenset({IMAGE_MANIFEST, "*/*", "application/*"})


async def version_check(request: Request) -> Response:
    """200 for a valid token; 401 with a challenge otherwise (skopeo learns to authenticate
    only from that 401)."""
    await caller(request, None)
    return JSONResponse({}, headers=API_VERSION)


async def token(request: Request) -> Response:
    """The Docker token flow: Basic credentials (the registry token as password) for a pull
    token scoped to the `repository:<model>:pull` scopes asked for."""
    repositories, catalog = _scopes(request.query_params.getlist("scope"))
    issued = await services_of(request).oci.issue_pull_token(
        token_from(request.headers), repositories, catalog
    )
    body = {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at.isoformat().replace("+00:00", "Z"),
    }
    return JSONResponse(body, headers={"cache-control": "no-store"})


def _scopes(scopes: list[str]) -> tuple[list[str], bool]:
    """Model ids with `pull` (or `*`) asked for, and whether the catalog is; others ignored
    (push is not offered, so a token for it carries pull only)."""
    repositories: list[str] = []
    catalog = False
    # A client may repeat `scope` or put several in one, space-separated; a token names at
    # most _MAX_SCOPES of them.
    items = [item for scope in scopes[:_MAX_SCOPES] for item in scope.split(" ")]
    for item in items[:_MAX_SCOPES]:
        if item == CATALOG_SCOPE:
            catalog = True
            continue
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        wanted = set(actions.split(","))
        if kind == "repository" and MODEL_ID_PATTERN.fullmatch(name) and wanted & {"pull", "*"}:
            repositories.append(name)
    return repositories, catalog


async def manifests(request: Request) -> Response:
    model = parse_name(request.path_params["name"])
    if request.method not in READ_METHODS:
        raise unsupported_push()
    reference = parse_reference(model, request.path_params["reference"])
    ctx = await caller(request, model)
    _check_accept(request)
    oci = services_of(request).oci
    if reference.digest is not None:
        manifest = await oci.manifest_by_digest(ctx, model, reference.digest)
    else:
        assert reference.version is not None
        manifest = await oci.manifest(ctx, reference.version)
    return _manifest_response(request, manifest)


def _check_accept(request: Request) -> None:
    """Every Accept line, each split on commas (skopeo sends six lines, containerd one)."""
    offered = {
        item.split(";", 1)[0].strip().lower()
        for line in request.headers.getlist("accept")
        for item in line.split(",")
    }
    offered.discard("")
    if offered and not offered & _ACCEPTABLE:
        raise NotFound(
            f"manifests here are {IMAGE_MANIFEST} only, and the request's Accept does not "
            "include it",
            reason=ErrorReason.MANIFEST_NOT_ACCEPTABLE,
        )


def _manifest_response(request: Request, manifest: OciManifest) -> Response:
    headers = {
        "docker-content-digest": manifest.digest,
        "etag": f'"{manifest.digest}"',
        "content-length": str(len(manifest.body)),
        **API_VERSION,
    }
    body = b"" if request.method == "HEAD" else manifest.body
    return Response(body, headers=headers, media_type=IMAGE_MANIFEST)


async def blobs(request: Request) -> Response:
    model = parse_name(request.path_params["name"])
    if request.method not in READ_METHODS:
        raise unsupported_push()
    digest = parse_digest(request.path_params["digest"])
    ctx = await caller(request, model)
    oci = services_of(request).oci
    blob = await oci.blob(ctx, model, digest)
    headers = {"docker-content-digest": digest, "etag": f'"{digest}"', **API_VERSION}
    content, key = blob.content, blob.object_key
    if content is not None:

        async def open_bytes(offset: int, length: int) -> AsyncIterator[bytes]:
            return _once(content[offset : offset + length])

        return await ranged_response(
            request, blob.size, open_bytes, media_type=blob.media_type, headers=headers
        )
    assert key is not None
    settings = settings_of(request)
    if settings.oci_blob_redirect and request.method == "GET":
        url = oci.blob_url(key, settings.s3_public_endpoint)
        return RedirectResponse(url, status_code=307, headers=headers)

    async def open_stored(offset: int, length: int) -> AsyncIterator[bytes]:
        return oci.read_blob(key, offset, length)

    return await ranged_response(
        request, blob.size, open_stored, media_type=blob.media_type, headers=headers
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def uploads(request: Request) -> Response:
    """Push (POST/PUT/PATCH/DELETE on blob uploads): refused, body drained by the error edge."""
    parse_name(request.path_params["name"])
    raise unsupported_push()


async def tags_list(request: Request) -> Response:
    model = parse_name(request.path_params["name"])
    ctx = await caller(request, model)
    n, last = _page(request)
    tags = await services_of(request).oci.tags(ctx, model)
    after = [t for t in tags if t.encode() > last.encode()] if last else tags
    page = after[:n]
    headers = {**API_VERSION}
    if len(after) > n and page:
        headers["link"] = _next_link(request, n, page[-1])
    return JSONResponse({"name": model, "tags": page}, headers=headers)


async def catalog(request: Request) -> Response:
    ctx = await caller(request, None, catalog=True)
    n, last = _page(request)
    found = await services_of(request).oci.catalog(ctx, last, n + 1)
    page = found[:n]
    headers = {**API_VERSION}
    if len(found) > n and page:
        headers["link"] = _next_link(request, n, page[-1])
    return JSONResponse({"repositories": page}, headers=headers)


def _page(request: Request) -> tuple[int, str]:
    """`n` (at most MAX_PAGE; DEFAULT_PAGE when absent) and `last`."""
    raw = request.query_params.get("n")
    last = request.query_params.get("last", "")
    if len(last) > _MAX_LAST or not last.isprintable():
        raise InvalidArgument(
            f"last must be a tag or repository name from the previous page (at most {_MAX_LAST} "
            "printable characters)",
            reason=ErrorReason.PAGINATION_LAST_INVALID,
        )
    if raw is None or raw == "":
        return DEFAULT_PAGE, last
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise InvalidArgument(
            f"n must be a whole number of results (0-{MAX_PAGE}), not {raw[:20]!r}",
            reason=ErrorReason.PAGINATION_NUMBER_INVALID,
        )
    return min(int(raw), MAX_PAGE), last


def _next_link(request: Request, n: int, last: str) -> str:
    return f'<{request.url.path}?{urlencode({"n": n, "last": last})}>; rel="next"'
