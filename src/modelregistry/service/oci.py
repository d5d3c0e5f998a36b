"""Use cases of the OCI distribution surface: a version's manifest by number, alias or digest,
its blobs, tags, the catalog, and the short-lived pull tokens of the Docker token flow.

Reads need the viewer role on the model and are not audited (like every read). Nothing here
writes: a version's manifest is computed from stored facts (domain/oci.py), so no replica
holds anything another one needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from modelregistry.domain.access import Access, Role, token_hash
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import NotFound, PermissionDenied, Unauthenticated
from modelregistry.domain.models import CallContext, ModelVersion
from modelregistry.domain.names import VersionRef
from modelregistry.domain.oci import MODEL_CONFIG, OciManifest, build_manifest, has_manifest
from modelregistry.service.auth import Authenticator
from modelregistry.service.models import model_not_found
from modelregistry.service.versions import VersionService
from modelregistry.storage import oci_store
from modelregistry.storage.database import Database
from modelregistry.storage.object_store import ObjectStore

# A pull token is checked when each request starts, never during a transfer, so a blob
# already streaming is never cut off; an hour covers the requests of a large pull, and a
# client that still outlives it gets a 401 challenge and fetches a new one.
PULL_TOKEN_TTL_S = 3600
# Long enough to follow a redirect, short enough that a leaked URL soon stops working.
PRESIGNED_URL_TTL_S = 300
READ_AHEAD = 4
_PULL_TOKEN_PREFIX = "mroci."  # noqa: S105  (marks pull tokens; not a secret)
_HINTS_MAX = 10_000
PULL_TOKEN_EXPIRED = ErrorReason.PULL_TOKEN_EXPIRED


@dataclass(frozen=True)
class PullToken:
    token: str
    issued_at: datetime
    expires_in: int
    # The repositories (model ids) it may pull from, and whether it may list the catalog.
    repositories: tuple[str, ...]
    catalog: bool


@dataclass(frozen=True)
class PullGrant:
    """Who a pull token speaks for and what it lets them read."""

    access: Access
    repositories: frozenset[str]
    catalog: bool


@dataclass(frozen=True)
class Blob:
    """A blob of a model: a config (small, built here) or a file's stored content."""

    digest: str
    size: int
    # The config's bytes; None for a file, whose bytes come from `object_key`.
    content: bytes | None
    object_key: str | None
    media_type: str


def blob_unknown(model: str, digest: str) -> NotFound:
    return NotFound(
        f"model {model!r} has no blob {digest} in a READY version",
        reason=ErrorReason.BLOB_NOT_FOUND,
    )


def manifest_unknown(model: str, digest: str) -> NotFound:
    return NotFound(
        f"no READY version of model {model!r} has the manifest {digest} (its files or lineage "
        "may have changed since); pull by version number or alias for the current one",
        reason=ErrorReason.MANIFEST_NOT_FOUND,
    )


def _not_ready(version: ModelVersion) -> NotFound:
    return NotFound(
        f"{version.name} has uploads open; it gets a manifest when they are finished or aborted",
        reason=ErrorReason.VERSION_NOT_READY,
    )


class OciService:
    def __init__(
        self, db: Database, store: ObjectStore, versions: VersionService,
        authenticator: Authenticator, page_key: bytes,
    ) -> None:  # fmt: skip
        self._db = db
        self._store = store
        self._versions = versions
        self._authenticator = authenticator
        self._token_key = hmac.new(page_key, b"oci pull tokens", hashlib.sha256).digest()
        # manifest or config digest -> version row id: a hint that spares a scan of the
        # model's versions; always checked against a freshly built manifest.
        self._hints: dict[str, int] = {}

    # -- the Docker token flow ---------------------------------------------------------------

    async def issue_pull_token(
        self,
        registry_token: str | None,
        repositories: list[str],
        catalog: bool,
        *,
        ttl_s: int = PULL_TOKEN_TTL_S,
    ) -> PullToken:
        """Exchange a registry token for one that may pull `repositories` (those of them the
        caller may read) for `ttl_s` seconds, and list the catalog if asked. Unauthenticated
        when the registry token is not valid."""
        access = await self._authenticator.authenticate(registry_token)
        assert registry_token is not None
        granted = tuple(sorted({r for r in repositories if access.role_on(r) >= Role.VIEWER}))
        issued = int(time.time())
        payload = {
            "d": token_hash(registry_token).hex(),
            "p": access.principal,
            "r": list(granted),
            "c": catalog,
            "e": issued + ttl_s,
        }
        body = _b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        tag = _b64(self._tag(body))
        return PullToken(
            token=f"{_PULL_TOKEN_PREFIX}{body}.{tag}",
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_in=ttl_s,
            repositories=granted,
            catalog=catalog,
        )

    @staticmethod
    def is_pull_token(token: str) -> bool:
        return token.startswith(_PULL_TOKEN_PREFIX)

    async def check_pull_token(self, token: str) -> PullGrant:
        """What a pull token grants. Unauthenticated if forged or if the registry token it was
        exchanged for has been revoked or has expired since; PermissionDenied if it expired."""
        body, _, tag = token[len(_PULL_TOKEN_PREFIX) :].partition(".")
        try:
            valid = hmac.compare_digest(_unb64(tag), self._tag(body))
            payload = json.loads(_unb64(body)) if valid else None
            digest = bytes.fromhex(payload["d"]) if payload else b""
        except (ValueError, KeyError, TypeError, binascii.Error):
            payload = None
        if not payload:
            raise Unauthenticated(
                "the bearer token is not valid", reason=ErrorReason.TOKEN_REQUIRED
            )
        if payload["e"] <= time.time():
            # 403, not 401: oras refreshes its token on a 403 and re-sends it on a 401.
            raise PermissionDenied(
                "the pull token has expired; fetch a new one from the token endpoint",
                reason=PULL_TOKEN_EXPIRED,
            )
        access = await self._authenticator.access_for_digest(digest)
        return PullGrant(access, frozenset(payload["r"]), bool(payload["c"]))

    def _tag(self, body: str) -> bytes:
        return hmac.new(self._token_key, body.encode(), hashlib.sha256).digest()

    # -- manifests -------------------------------------------------------------------------

    async def manifest(self, ctx: CallContext, ref: VersionRef) -> OciManifest:
        """The manifest of the version a number or alias names."""
        ctx.require(Role.VIEWER, ref.model, "pull this model")
        version = await self._versions.get(ref)
        if not has_manifest(version):
            raise _not_ready(version)
        return self._built(version)

    async def manifest_by_digest(self, ctx: CallContext, model: str, digest: str) -> OciManifest:
        ctx.require(Role.VIEWER, model, "pull this model")
        found = await self._find(model, digest, config=False)
        if found is None:
            raise manifest_unknown(model, digest)
        return found

    def _built(self, version: ModelVersion) -> OciManifest:
        built = build_manifest(version)
        if len(self._hints) >= _HINTS_MAX:
            self._hints.clear()
        self._hints[built.digest] = self._hints[built.config_digest] = version.id
        return built

    async def _find(self, model: str, digest: str, config: bool) -> OciManifest | None:
        """The manifest of a READY version of `model` whose digest (or config's digest) is
        `digest`: the hinted version first, else each READY version, newest first. NotFound
        if the model does not exist."""

        def matches(built: OciManifest) -> bool:
            return (built.config_digest if config else built.digest) == digest

        async with self._db.connection() as conn:
            row_id = self._hints.get(digest)
            if row_id is not None:
                version = await oci_store.version_with_manifest_by_id(conn, row_id)
                if version is not None and version.model == model and has_manifest(version):
                    built = self._built(version)
                    if matches(built):
                        return built
            if not await oci_store.model_exists(conn, model):
                raise model_not_found(model)
            versions = await oci_store.ready_versions(conn, model)
        for version in versions:
            built = self._built(version)
            if matches(built):
                return built
        return None

    # -- blobs --------------------------------------------------------------------------------

    async def blob(self, ctx: CallContext, model: str, digest: str) -> Blob:
        """A file of a READY version of `model`, or the config of one's manifest."""
        ctx.require(Role.VIEWER, model, "pull this model")
        sha256 = digest.removeprefix("sha256:")
        async with self._db.connection() as conn:
            stored = await oci_store.blob_of_model(conn, model, sha256)
        if stored is not None:
            key, size = stored
            return Blob(digest, size, None, key, "application/octet-stream")
        found = await self._find(model, digest, config=True)
        if found is None:
            raise blob_unknown(model, digest)
        return Blob(digest, len(found.config), found.config, None, MODEL_CONFIG)

    def read_blob(self, object_key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """`length` bytes of a stored blob from `offset`, streamed (never whole in memory)."""
        return self._store.stream_range(object_key, offset, length, READ_AHEAD)

    def blob_url(self, object_key: str, public_endpoint: str) -> str:
        """A presigned GET of a stored blob, valid for PRESIGNED_URL_TTL_S seconds."""
        return self._store.presigned_get_url(object_key, PRESIGNED_URL_TTL_S, public_endpoint)

    # -- tags and catalog ---------------------------------------------------------------------

    async def tags(self, ctx: CallContext, model: str) -> list[str]:
        """Numbers and aliases of the READY versions (`latest` when the highest is READY), in
        byte order."""
        ctx.require(Role.VIEWER, model, "list the tags of this model")
        async with self._db.connection() as conn:
            if not await oci_store.model_exists(conn, model):
                raise model_not_found(model)
            versions = await oci_store.version_tags(conn, model)
        tags: set[str] = set()
        for index, (number, ready, aliases) in enumerate(versions):
            if not ready:
                continue
            tags.add(str(number))
            tags.update(aliases)
            if index == 0:
                tags.add("latest")
        return sorted(tags, key=str.encode)

    async def catalog(self, ctx: CallContext, after: str, limit: int) -> list[str]:
        """Up to `limit` models the caller may read, after `after`, in byte order."""
        access = ctx.access
        found: list[str] = []
        async with self._db.connection() as conn:
            while len(found) < limit:
                batch = await oci_store.model_ids(conn, after, limit)
                if not batch:
                    break
                found.extend(m for m in batch if access is None or access.role_on(m) >= Role.VIEWER)
                after = batch[-1]
        return found[:limit]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
