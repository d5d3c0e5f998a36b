"""Garbage collection: idle upload sessions, blobs no artifact names, orphaned objects, and
multipart uploads no open session owns.

Safe while uploads and deletes run: a blob row is deleted only when no artifact names it (the
foreign key refuses otherwise, even against a commit racing this pass), and an object is
removed only if the bucket listing that found it predates the database read that shows
nothing refers to it. A multipart upload is started before its session row is written, so one
that no session owns is aborted only once it is older than a grace period: left by an
AbortUpload that could not reach the store, or by a start that timed out yet happened.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from modelregistry.domain.artifacts import UploadState
from modelregistry.domain.errors import Unavailable
from modelregistry.domain.models import CallContext
from modelregistry.service.artifacts import BLOB_PREFIX
from modelregistry.storage import artifacts_store, audit_store
from modelregistry.storage.database import Database
from modelregistry.storage.object_store import ObjectStore

_BATCH = 500
# How old a multipart upload no session owns must be before gc aborts it: far longer than
# the moment between starting one and recording its session.
MULTIPART_GRACE_S = 3600.0


@dataclass
class GcReport:
    sessions_aborted: int = 0
    blobs_deleted: int = 0
    orphan_objects_deleted: int = 0
    multipart_uploads_aborted: int = 0
    bytes_freed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class GarbageCollector:
    def __init__(self, db: Database, store: ObjectStore) -> None:
        self._db = db
        self._store = store

    async def collect(
        self, ctx: CallContext, idle_s: float, multipart_grace_s: float = MULTIPART_GRACE_S
    ) -> GcReport:
        report = GcReport()
        await self._abort_idle_sessions(ctx, idle_s, report)
        await self._delete_unreferenced_blobs(report)
        await self._delete_orphan_objects(report)
        await self._abort_stray_multipart_uploads(multipart_grace_s, report)
        return report

    async def _abort_idle_sessions(self, ctx: CallContext, idle_s: float, report: GcReport) -> None:
        async with self._db.connection() as conn:
            idle = await artifacts_store.idle_sessions(conn, idle_s, _BATCH)
        for session in idle:
            async with self._db.transaction() as conn:
                current = await artifacts_store.get_session(conn, session.id, for_update=True)
                if current is None or current.state != UploadState.ACTIVE:
                    continue
                await artifacts_store.finish_session(conn, session.id, UploadState.ABORTED, None)
                await audit_store.insert_audit(
                    conn, ctx, "AbortUpload", session.artifact_name,
                    {"upload_id": session.id, "committed_size": session.committed_size},
                    {"state": "ABORTED", "why": f"idle for more than {idle_s:g} s"},
                )  # fmt: skip
            with contextlib.suppress(Unavailable):
                await self._store.abort_multipart_async(session.object_key, session.s3_upload_id)
            report.sessions_aborted += 1
            report.bytes_freed += session.committed_size

    async def _delete_unreferenced_blobs(self, report: GcReport) -> None:
        async with self._db.connection() as conn:
            candidates = await artifacts_store.unreferenced_blobs(conn, _BATCH)
        for sha256 in candidates:
            async with self._db.transaction() as conn:
                deleted = await artifacts_store.delete_unreferenced_blob(conn, sha256)
            if deleted is None:
                continue
            key, size = deleted
            await self._store.remove_async(key)
            report.blobs_deleted += 1
            report.bytes_freed += size

    async def _delete_orphan_objects(self, report: GcReport) -> None:
        # List first, then read what the database knows: an object listed here was created
        # before this read, so if neither a blob nor an open session names it now, none will.
        listed = await self._store.object_keys_async(BLOB_PREFIX)
        async with self._db.connection() as conn:
            known = await artifacts_store.known_object_keys(conn)
        for key in listed:
            if key not in known:
                await self._store.remove_async(key)
                report.orphan_objects_deleted += 1

    async def _abort_stray_multipart_uploads(self, grace_s: float, report: GcReport) -> None:
        # As with objects: list first, then read which sessions are open.
        listed = await self._store.multipart_uploads_async(BLOB_PREFIX)
        async with self._db.connection() as conn:
            owned = await artifacts_store.open_multipart_upload_ids(conn)
        started_before = datetime.now(UTC) - timedelta(seconds=grace_s)
        for pending in listed:
            if pending.upload_id in owned:
                continue
            # Of unknown age (a store that does not say), it is left alone unless grace is 0.
            old_enough = grace_s <= 0 or (
                pending.initiated is not None and pending.initiated < started_before
            )
            if not old_enough:
                continue
            await self._store.abort_multipart_async(pending.key, pending.upload_id)
            report.multipart_uploads_aborted += 1
