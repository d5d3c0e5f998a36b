"""Artifact use cases: open, write, commit, abort, read, list and delete files of versions."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from modelregistry.domain.access import Role
from modelregistry.domain.artifacts import (
    DEFAULT_CONTENT_TYPE,
    Artifact,
    DownloadUrl,
    UploadSession,
    UploadState,
    download_url_lifetime,
    part_size_for,
)
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import (
    Aborted,
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PreconditionViolation,
    ResourceExhausted,
)
from modelregistry.domain.models import CallContext, ModelVersion, Page, Stage
from modelregistry.domain.names import VersionRef
from modelregistry.domain.page_tokens import decode_cursor, next_page
from modelregistry.domain.paging import resolve_page_size
from modelregistry.hashing import ResumableSha256, UnreadableHashState
from modelregistry.service.upload_writer import (
    BUFFERS,
    LEASE_S,
    BufferPool,
    ClaimKeeper,
    PastDeclaredSize,
    UploadWriter,
    WriteChunk,
    drain_quietly,
    wrong_offset,
)
from modelregistry.service.versions import VersionService
from modelregistry.storage import artifacts_store, audit_store
from modelregistry.storage.database import Connection, Database
from modelregistry.storage.object_store import ObjectStore

BLOB_PREFIX = "blobs/"
DOWNLOAD_READ_AHEAD = 4
# Presigned download URLs: long enough to fetch a large shard, short enough that a leaked URL
# soon stops working. The maximum is MODELREG_DOWNLOAD_URL_MAX_LIFETIME_S.
DEFAULT_DOWNLOAD_URL_LIFETIME = timedelta(minutes=15)
MAX_DOWNLOAD_URL_LIFETIME = timedelta(hours=1)


def upload_not_found(upload_id: str) -> NotFound:
    return NotFound(
        f"upload {upload_id!r} not found; start one with StartUpload",
        reason=ErrorReason.UPLOAD_NOT_FOUND,
    )


def _frozen(version: ModelVersion) -> FailedPrecondition:
    return FailedPrecondition(
        f"{version.name} is in {version.stage.value}; artifacts can change only in DEVELOPMENT",
        reason=ErrorReason.ARTIFACTS_FROZEN,
        violations=[PreconditionViolation("STAGE", version.name, "not in DEVELOPMENT")],
    )


# ACTIVE only when the session row vanished under a commit: it was aborted and collected.
_NOT_ACTIVE_REASONS = {
    UploadState.COMMITTED: ErrorReason.UPLOAD_COMMITTED,
    UploadState.ABORTED: ErrorReason.UPLOAD_ABORTED,
    UploadState.ACTIVE: ErrorReason.UPLOAD_ABORTED,
}


def _not_active(session: UploadSession) -> FailedPrecondition:
    return FailedPrecondition(
        f"upload {session.id} is {session.state.value}; "
        + (
            "its artifact exists already"
            if session.state == UploadState.COMMITTED
            else "start a new upload"
        ),
        reason=_NOT_ACTIVE_REASONS[session.state],
    )


class ArtifactService:
    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        versions: VersionService,
        page_token_key: bytes,
        max_concurrent_uploads: int,
        download_url_max_lifetime: timedelta = MAX_DOWNLOAD_URL_LIFETIME,
    ) -> None:
        self._db = db
        self._download_url_max_lifetime = download_url_max_lifetime
        self._store = store
        self._versions = versions
        self._key = page_token_key
        self._upload_slots = max_concurrent_uploads
        self._uploads_streaming = 0
        # One hash job per upload at a time; hashlib-speed SHA-256 releases the GIL.
        self._hash_executor = ThreadPoolExecutor(
            max_workers=max(2, max_concurrent_uploads // 2), thread_name_prefix="sha256"
        )
        self._background: set[asyncio.Task[None]] = set()
        self._buffers = BufferPool(max_idle=max_concurrent_uploads * BUFFERS)

    # -- uploads -----------------------------------------------------------------------------

    async def start_upload(
        self,
        ctx: CallContext,
        ref: VersionRef,
        path: str,
        size: int | None,
        sha256: str,
        content_type: str,
    ) -> UploadSession:
        ctx.require(Role.EDITOR, ref.model, "upload artifacts to this model")
        version = await self._versions.get(ref)
        if version.stage != Stage.DEVELOPMENT:
            raise _frozen(version)
        content_type = content_type or DEFAULT_CONTENT_TYPE
        if sha256:
            stored = await self._create_from_stored_blob(
                ctx, version, path, size, sha256, content_type
            )
            if stored is not None:
                return stored
        return await self._open_session(ctx, version, path, size, sha256, content_type)

    async def _create_from_stored_blob(
        self,
        ctx: CallContext,
        version: ModelVersion,
        path: str,
        size: int | None,
        sha256: str,
        content_type: str,
    ) -> UploadSession | None:
        """Content the registry already holds becomes an artifact with no bytes moved."""
        async with self._db.transaction() as conn:
            blob = await artifacts_store.blob_summary(conn, sha256)
            if blob is None:
                return None
            blob_size, summary = blob
            await self._hold_development(conn, version)
            if size is not None and size != blob_size:
                raise InvalidArgument.for_field(
                    "size_bytes",
                    f"the content with that sha256 is {blob_size} bytes, not {size}",
                )
            await self._check_path_free(conn, version, path)
            artifact_id = await artifacts_store.insert_artifact(
                conn, version.id, path, sha256, blob_size, content_type, summary
            )
            artifact = await artifacts_store.get_artifact_by_id(conn, artifact_id)
            session = UploadSession(
                id=str(uuid.uuid4()), model=version.model, version=version.version,
                version_id=version.id, path=path, declared_size=size, declared_sha256=sha256,
                content_type=content_type, object_key="", s3_upload_id="", part_size=0,
                committed_size=blob_size, parts=[], hash_state=b"",
                state=UploadState.COMMITTED, update_time=artifact.create_time, summary=summary,
                result=artifact,
            )  # fmt: skip
            await artifacts_store.insert_committed_session(conn, session, artifact_id)
            await audit_store.insert_audit(
                conn, ctx, "StartUpload", artifact.name, None, _artifact_summary(artifact)
            )
        return session

    async def _hold_development(self, conn: Connection, version: ModelVersion) -> None:
        """Keep the version in DEVELOPMENT until this transaction commits."""
        stage = await artifacts_store.lock_version_stage(conn, version.id)
        if stage is None:
            raise NotFound(f"{version.name} was deleted", reason=ErrorReason.VERSION_NOT_FOUND)
        if stage != Stage.DEVELOPMENT:
            raise _frozen(version)

    async def _check_path_free(self, conn: Connection, version: ModelVersion, path: str) -> None:
        if await artifacts_store.path_taken(conn, version.id, path):
            raise AlreadyExists(
                f"{version.name} already has {path!r} or an open upload of it; delete or "
                "abort that first",
                reason=ErrorReason.ARTIFACT_EXISTS,
            )

    async def _open_session(
        self,
        ctx: CallContext,
        version: ModelVersion,
        path: str,
        size: int | None,
        sha256: str,
        content_type: str,
    ) -> UploadSession:
        async with self._db.connection() as conn:
            await self._check_path_free(conn, version, path)
        session_id = str(uuid.uuid4())
        object_key = f"{BLOB_PREFIX}{uuid.uuid4().hex}"
        s3_upload_id = await self._store.create_multipart_async(object_key)
        session = UploadSession(
            id=session_id, model=version.model, version=version.version,
            version_id=version.id, path=path, declared_size=size, declared_sha256=sha256,
            content_type=content_type, object_key=object_key, s3_upload_id=s3_upload_id,
            part_size=part_size_for(size), committed_size=0, parts=[],
            hash_state=ResumableSha256().state(), state=UploadState.ACTIVE,
            update_time=version.update_time,
        )  # fmt: skip
        try:
            async with self._db.transaction() as conn:
                await self._hold_development(conn, version)
                await artifacts_store.insert_session(conn, session)
                stored = await artifacts_store.get_session(conn, session_id)
                await audit_store.insert_audit(
                    conn, ctx, "StartUpload", session.artifact_name, None,
                    {"upload_id": session_id, "declared_size": size, "declared_sha256": sha256},
                )  # fmt: skip
        except BaseException:
            await self._store.abort_multipart_async(object_key, s3_upload_id)
            raise
        assert stored is not None
        return stored

    async def query_upload(self, upload_id: str) -> UploadSession:
        async with self._db.connection() as conn:
            session = await artifacts_store.get_session(conn, upload_id)
        if session is None:
            raise upload_not_found(upload_id)
        return session

    async def write(
        self, ctx: CallContext, chunks: AsyncIterator[WriteChunk]
    ) -> tuple[int, Artifact | None]:
        first = await anext(chunks, None)
        if first is None:
            raise InvalidArgument.for_field("upload_id", "the Write stream sent no message")
        session = await self.query_upload(first.upload_id)
        ctx.require(Role.EDITOR, session.model, "upload artifacts to this model")
        if session.state != UploadState.ACTIVE:
            raise _not_active(session)
        if first.offset != session.committed_size:
            raise wrong_offset(session.id, session.committed_size, first.offset)
        await self._check_hash_state(ctx, session)
        if self._uploads_streaming >= self._upload_slots:
            raise ResourceExhausted(
                f"this server is streaming {self._uploads_streaming} uploads, its limit; "
                "retry with backoff",
                reason=ErrorReason.TOO_MANY_UPLOADS,
            )
        writer_id = str(uuid.uuid4())
        async with self._db.connection() as conn:
            if not await artifacts_store.claim_session(conn, session.id, writer_id, LEASE_S):
                raise Aborted(
                    f"another stream is writing upload {session.id}; retry after a moment",
                    reason=ErrorReason.UPLOAD_BUSY,
                )
        self._uploads_streaming += 1
        writer = UploadWriter(
            self._db, self._store, self._hash_executor, self._buffers, session, writer_id
        )
        claim = ClaimKeeper(self._db, session.id, writer_id)
        try:
            try:
                finished = await writer.write(first, chunks)
            except PastDeclaredSize:
                await self._abort(ctx, writer.session, "size mismatch", action="Write")
                raise
            if not finished:
                # Nothing is in flight: free the session now, so that the client's next
                # stream need not wait for the background release.
                with contextlib.suppress(Exception):
                    await self._release(session.id, writer_id, claim)
                return writer.session.committed_size, None
            artifact = await self._commit(ctx, writer)
            return artifact.size_bytes, artifact
        finally:
            self._uploads_streaming -= 1
            self._in_background(
                drain_quietly(writer, lambda: self._release(session.id, writer_id, claim))
            )

    async def _check_hash_state(self, ctx: CallContext, session: UploadSession) -> None:
        """A session whose saved SHA-256 state this server cannot read can never finish with
        a digest anyone could trust: end it, and say to start again."""
        try:
            ResumableSha256.from_state(session.hash_state, session.committed_size)
        except UnreadableHashState as exc:
            await self._abort(ctx, session, f"unreadable hash state: {exc}", action="Write")
            raise FailedPrecondition(
                f"upload {session.id} cannot resume here: {exc}; it was aborted, start a new "
                "upload",
                reason=ErrorReason.UPLOAD_HASH_STATE_UNREADABLE,
            ) from exc

    async def _release(self, upload_id: str, writer_id: str, claim: ClaimKeeper) -> None:
        await claim.stop()
        async with self._db.connection() as conn:
            await artifacts_store.release_session(conn, upload_id, writer_id)

    async def _commit(self, ctx: CallContext, writer: UploadWriter) -> Artifact:
        session = writer.session
        size, digest = session.committed_size, writer.hasher.hexdigest()
        if session.declared_size is not None and size != session.declared_size:
            await self._abort(ctx, session, "size mismatch", action="Write")
            raise InvalidArgument.for_field(
                "finish",
                f"the upload declared {session.declared_size} bytes but {size} arrived; "
                "nothing was stored, start again",
            )
        if session.declared_sha256 and digest != session.declared_sha256:
            await self._abort(ctx, session, "sha256 mismatch", action="Write")
            raise DataLoss(
                f"the bytes received hash to {digest}, not the declared "
                f"{session.declared_sha256}: they were corrupted on the way; nothing was "
                "stored, upload again",
                reason=ErrorReason.DIGEST_MISMATCH,
            )
        await self._complete_object(session)
        async with self._db.transaction() as conn:
            current = await artifacts_store.get_session(conn, session.id, for_update=True)
            if current is None or current.state != UploadState.ACTIVE:
                raise _not_active(current or session)
            fresh = await artifacts_store.insert_blob(conn, digest, size, session.object_key)
            artifact_id = await artifacts_store.insert_artifact(
                conn, session.version_id, session.path, digest, size, session.content_type,
                session.summary,
            )  # fmt: skip
            await artifacts_store.finish_session(
                conn, session.id, UploadState.COMMITTED, artifact_id
            )
            artifact = await artifacts_store.get_artifact_by_id(conn, artifact_id)
            await audit_store.insert_audit(
                conn, ctx, "Write", artifact.name, None, _artifact_summary(artifact)
            )
        if not fresh:
            # The content was already stored: keep one copy (a leftover goes at the next gc).
            with contextlib.suppress(Exception):
                await self._store.remove_async(session.object_key)
        return artifact

    async def _complete_object(self, session: UploadSession) -> None:
        store = self._store
        try:
            await store.complete_multipart_async(
                session.object_key, session.s3_upload_id, session.parts
            )
        except FailedPrecondition:
            # A retried finish whose first completion reached S3 but not PostgreSQL.
            size = await store.object_size_async(session.object_key)
            if size != session.committed_size:
                raise

    async def abort_upload(self, ctx: CallContext, upload_id: str) -> UploadSession:
        session = await self.query_upload(upload_id)
        ctx.require(Role.EDITOR, session.model, "abort uploads to this model")
        if session.state == UploadState.COMMITTED:
            raise _not_active(session)
        if session.state == UploadState.ACTIVE:
            await self._abort(ctx, session, "aborted by the caller")
        return await self.query_upload(upload_id)

    async def _abort(
        self, ctx: CallContext, session: UploadSession, why: str, action: str = "AbortUpload"
    ) -> None:
        """End the session; `action` is the method that ended it, as the audit log records."""
        async with self._db.transaction() as conn:
            await artifacts_store.finish_session(conn, session.id, UploadState.ABORTED, None)
            await audit_store.insert_audit(
                conn, ctx, action, session.artifact_name,
                {"upload_id": session.id, "committed_size": session.committed_size},
                {"state": "ABORTED", "why": why},
            )  # fmt: skip
        with contextlib.suppress(Exception):  # gc retries what the store refuses now
            await self._store.abort_multipart_async(session.object_key, session.s3_upload_id)

    def _in_background(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._hash_executor.shutdown(wait=True)

    # -- reads -------------------------------------------------------------------------------

    async def get(self, ref: VersionRef, path: str) -> Artifact:
        version = await self._versions.get(ref)
        async with self._db.connection() as conn:
            artifact = await artifacts_store.get_artifact(
                conn, VersionRef(version.model, number=version.version), path
            )
        if artifact is None:
            raise NotFound(
                f"{version.name} has no artifact {path!r}", reason=ErrorReason.ARTIFACT_NOT_FOUND
            )
        return artifact

    async def download(
        self, ref: VersionRef, path: str, offset: int, length: int
    ) -> tuple[Artifact, AsyncIterator[bytes]]:
        if offset < 0 or length < 0:
            raise InvalidArgument.for_field(
                "offset" if offset < 0 else "length", "must not be negative"
            )
        artifact = await self.get(ref, path)
        if offset > artifact.size_bytes:
            raise OutOfRange(
                f"offset {offset} is past the end of {artifact.name} ({artifact.size_bytes} bytes)",
                reason=ErrorReason.OFFSET_PAST_END,
            )
        remaining = artifact.size_bytes - offset
        count = remaining if length == 0 else min(length, remaining)
        key = await self._object_key(artifact)
        return artifact, self._ended_when_done(
            self._store.stream_range(key, offset, count, DOWNLOAD_READ_AHEAD)
        )

    async def _object_key(self, artifact: Artifact) -> str:
        async with self._db.connection() as conn:
            key = await artifacts_store.object_key_of(conn, artifact.sha256)
        if key is None:
            raise DataLoss(
                f"the content of {artifact.name} is missing", reason=ErrorReason.BLOB_MISSING
            )
        return key

    async def download_url(
        self, ctx: CallContext, ref: VersionRef, path: str, lifetime: timedelta | None
    ) -> DownloadUrl:
        """A presigned URL that reads the artifact's bytes straight from the store."""
        lifetime = download_url_lifetime(
            lifetime, DEFAULT_DOWNLOAD_URL_LIFETIME, self._download_url_max_lifetime, "lifetime"
        )
        ctx.require(Role.VIEWER, ref.model, "read artifacts of this model")
        artifact = await self.get(ref, path)
        key = await self._object_key(artifact)
        seconds = int(lifetime.total_seconds())  # S3 signs whole seconds
        # Taken before signing, so the URL never outlives what the caller is told.
        expire_time = datetime.now(UTC) + timedelta(seconds=seconds)
        url = self._store.presigned_get_url(key, seconds)
        return DownloadUrl(url=url, expire_time=expire_time, artifact=artifact)

    async def _ended_when_done(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The chunks, telling the buffer pool when the download ends (memory goes back)."""
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            self._buffers.transfer_ended()

    async def list(self, ref: VersionRef, page_size: int, page_token: str) -> Page[Artifact]:
        limit = resolve_page_size(page_size)
        version = await self._versions.get(ref)
        binding = f"ListArtifacts\x00{version.name}"
        after = ""
        if page_token:
            (after,) = decode_cursor(self._key, binding, page_token, str)
        async with self._db.connection() as conn:
            items = await artifacts_store.list_artifacts(conn, version.id, after, limit + 1)
        return next_page(items, limit, self._key, binding, lambda a: [a.path])

    async def delete(self, ctx: CallContext, ref: VersionRef, path: str) -> None:
        ctx.require(Role.EDITOR, ref.model, "delete artifacts of this model")
        version = await self._versions.get(ref)
        if version.stage != Stage.DEVELOPMENT:
            raise _frozen(version)
        artifact = await self.get(VersionRef(version.model, number=version.version), path)
        async with self._db.transaction() as conn:
            await artifacts_store.delete_artifact(conn, artifact.id)
            await audit_store.insert_audit(
                conn, ctx, "DeleteArtifact", artifact.name, _artifact_summary(artifact), None
            )


def _artifact_summary(artifact: Artifact) -> dict[str, object]:
    return {"path": artifact.path, "size_bytes": artifact.size_bytes, "sha256": artifact.sha256}
