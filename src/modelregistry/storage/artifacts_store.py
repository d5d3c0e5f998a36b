"""SQL for blobs, artifacts and upload sessions."""

from __future__ import annotations

from typing import Any

import asyncpg

from modelregistry.domain.artifacts import Artifact, ManifestEntry, UploadSession, UploadState
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import AlreadyExists
from modelregistry.domain.names import VersionRef
from modelregistry.storage.rows import Row

_ARTIFACT_COLUMNS = (
    "a.id, m.name AS model, v.version, a.path, a.size_bytes, a.blob_sha256, a.content_type, "
    "a.create_time, a.summary"
)
_ARTIFACT_FROM = (
    "artifacts a JOIN model_versions v ON v.id = a.version_id JOIN models m ON m.id = v.model_id"
)
_SESSION_COLUMNS = (
    "s.id::text AS id, m.name AS model, v.version, s.version_id, s.path, s.declared_size, "
    "s.declared_sha256, s.content_type, s.object_key, s.s3_upload_id, s.part_size, "
    "s.committed_size, s.parts, s.hash_state, s.state, s.update_time, s.summary, s.artifact_id"
)
_SESSION_FROM = (
    "upload_sessions s JOIN model_versions v ON v.id = s.version_id "
    "JOIN models m ON m.id = v.model_id"
)


def _summary(value: Any) -> tuple[str, dict[str, str]] | None:
    if not value:
        return None
    return value["format"], dict(value["properties"])


def summary_json(summary: tuple[str, dict[str, str]] | None) -> dict[str, Any] | None:
    return None if summary is None else {"format": summary[0], "properties": summary[1]}


def artifact_from_row(row: Row) -> Artifact:
    return Artifact(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        path=row["path"],
        size_bytes=row["size_bytes"],
        sha256=row["blob_sha256"],
        content_type=row["content_type"],
        create_time=row["create_time"],
        summary=_summary(row["summary"]),
    )


def session_from_row(row: Row, result: Artifact | None = None) -> UploadSession:
    return UploadSession(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        version_id=row["version_id"],
        path=row["path"],
        declared_size=row["declared_size"],
        declared_sha256=row["declared_sha256"],
        content_type=row["content_type"],
        object_key=row["object_key"],
        s3_upload_id=row["s3_upload_id"],
        part_size=row["part_size"],
        committed_size=row["committed_size"],
        parts=[(p["number"], p["etag"]) for p in row["parts"]],
        hash_state=bytes(row["hash_state"]),
        state=UploadState(row["state"]),
        update_time=row["update_time"],
        summary=_summary(row["summary"]),
        result=result,
    )


# -- artifacts --------------------------------------------------------------------------------


async def get_artifact(conn: asyncpg.Connection, ref: VersionRef, path: str) -> Artifact | None:
    """By version number; aliases are resolved by the caller."""
    row = await conn.fetchrow(
        f"""SELECT {_ARTIFACT_COLUMNS} FROM {_ARTIFACT_FROM}
            WHERE m.name = $1 AND v.version = $2 AND a.path = $3""",
        ref.model,
        ref.number,
        path,
    )
    return artifact_from_row(row) if row else None


async def get_artifact_by_id(conn: asyncpg.Connection, artifact_id: int) -> Artifact:
    row = await conn.fetchrow(
        f"SELECT {_ARTIFACT_COLUMNS} FROM {_ARTIFACT_FROM} WHERE a.id = $1", artifact_id
    )
    return artifact_from_row(row)


async def object_key_of(conn: asyncpg.Connection, sha256: str) -> str | None:
    key: str | None = await conn.fetchval("SELECT object_key FROM blobs WHERE sha256 = $1", sha256)
    return key


async def list_artifacts(
    conn: asyncpg.Connection, version_id: int, after_path: str, limit: int
) -> list[Artifact]:
    rows = await conn.fetch(
        f"""SELECT {_ARTIFACT_COLUMNS} FROM {_ARTIFACT_FROM}
            WHERE a.version_id = $1 AND a.path COLLATE "C" > $2
            ORDER BY a.path COLLATE "C" LIMIT $3""",
        version_id,
        after_path,
        limit,
    )
    return [artifact_from_row(r) for r in rows]


async def manifest(conn: asyncpg.Connection, version_id: int) -> list[ManifestEntry]:
    rows = await conn.fetch(
        """SELECT path, size_bytes, blob_sha256 FROM artifacts WHERE version_id = $1
           ORDER BY path COLLATE "C" """,
        version_id,
    )
    return [ManifestEntry(r["path"], r["size_bytes"], r["blob_sha256"]) for r in rows]


async def path_taken(conn: asyncpg.Connection, version_id: int, path: str) -> bool:
    taken: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM artifacts WHERE version_id = $1 AND path = $2)
               OR EXISTS (SELECT 1 FROM upload_sessions
                          WHERE version_id = $1 AND path = $2 AND state = 'ACTIVE')""",
        version_id,
        path,
    )
    return taken


async def insert_artifact(
    conn: asyncpg.Connection,
    version_id: int,
    path: str,
    sha256: str,
    size: int,
    content_type: str,
    summary: tuple[str, dict[str, str]] | None,
) -> int:
    try:
        artifact_id: int = await conn.fetchval(
            """INSERT INTO artifacts (version_id, path, blob_sha256, size_bytes, content_type,
                                      summary)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            version_id,
            path,
            sha256,
            size,
            content_type,
            summary_json(summary),
        )
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(
            f"the version already has an artifact at {path!r}; delete it first",
            reason=ErrorReason.ARTIFACT_EXISTS,
        ) from exc
    return artifact_id


async def delete_artifact(conn: asyncpg.Connection, artifact_id: int) -> None:
    await conn.execute("DELETE FROM artifacts WHERE id = $1", artifact_id)


async def lock_version_stage(conn: asyncpg.Connection, version_id: int) -> str | None:
    """The version's stage, held against concurrent stage moves until the transaction ends."""
    stage: str | None = await conn.fetchval(
        "SELECT stage FROM model_versions WHERE id = $1 FOR NO KEY UPDATE", version_id
    )
    return stage


# -- blobs ------------------------------------------------------------------------------------


async def blob_summary(conn: asyncpg.Connection, sha256: str) -> tuple[int, Any] | None:
    """(size, summary of an artifact with that content) if the blob is stored."""
    row = await conn.fetchrow(
        """SELECT b.size_bytes,
                  (SELECT a.summary FROM artifacts a WHERE a.blob_sha256 = b.sha256 LIMIT 1)
                  AS summary
           FROM blobs b WHERE b.sha256 = $1 FOR KEY SHARE OF b""",
        sha256,
    )
    return (row["size_bytes"], _summary(row["summary"])) if row else None


async def insert_blob(conn: asyncpg.Connection, sha256: str, size: int, object_key: str) -> bool:
    """Record a stored object as the blob for `sha256`; False if one already exists."""
    inserted = await conn.fetchval(
        """INSERT INTO blobs (sha256, size_bytes, object_key) VALUES ($1, $2, $3)
           ON CONFLICT (sha256) DO NOTHING RETURNING true""",
        sha256,
        size,
        object_key,
    )
    return bool(inserted)


async def delete_unreferenced_blob(conn: asyncpg.Connection, sha256: str) -> tuple[str, int] | None:
    """Delete the blob row if nothing names it: (object key, size), or None if kept."""
    try:
        row = await conn.fetchrow(
            """DELETE FROM blobs b WHERE b.sha256 = $1
               AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.blob_sha256 = b.sha256)
               RETURNING b.object_key, b.size_bytes""",
            sha256,
        )
    except asyncpg.ForeignKeyViolationError:
        return None  # an artifact naming it committed meanwhile: keep it
    return (row["object_key"], row["size_bytes"]) if row else None


async def unreferenced_blobs(conn: asyncpg.Connection, limit: int) -> list[str]:
    rows = await conn.fetch(
        """SELECT b.sha256 FROM blobs b
           WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.blob_sha256 = b.sha256)
           LIMIT $1""",
        limit,
    )
    return [r["sha256"] for r in rows]


async def known_object_keys(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        """SELECT object_key FROM blobs
           UNION ALL SELECT object_key FROM upload_sessions WHERE state = 'ACTIVE'"""
    )
    return {r["object_key"] for r in rows}


async def open_multipart_upload_ids(conn: asyncpg.Connection) -> set[str]:
    """The S3 upload ids of the sessions still open: their multipart uploads are in use."""
    rows = await conn.fetch("SELECT s3_upload_id FROM upload_sessions WHERE state = 'ACTIVE'")
    return {r["s3_upload_id"] for r in rows}


# -- upload sessions --------------------------------------------------------------------------


async def insert_session(conn: asyncpg.Connection, session: UploadSession) -> None:
    try:
        await conn.execute(
            """INSERT INTO upload_sessions (id, version_id, path, declared_size, declared_sha256,
                   content_type, object_key, s3_upload_id, part_size, hash_state)
               VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            session.id,
            session.version_id,
            session.path,
            session.declared_size,
            session.declared_sha256,
            session.content_type,
            session.object_key,
            session.s3_upload_id,
            session.part_size,
            session.hash_state,
        )
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(
            f"an upload of {session.path!r} into this version is already open; resume it or "
            "abort it first",
            reason=ErrorReason.UPLOAD_OPEN,
        ) from exc
    await refresh_version_status(conn, session.version_id)


async def insert_committed_session(
    conn: asyncpg.Connection, session: UploadSession, artifact_id: int
) -> None:
    """Record an upload that needed no bytes, so QueryUpload answers for its id too."""
    await conn.execute(
        """INSERT INTO upload_sessions (id, version_id, path, declared_size, declared_sha256,
               content_type, object_key, s3_upload_id, part_size, committed_size, hash_state,
               state, artifact_id)
           VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, '', 0, $8, ''::bytea, 'COMMITTED', $9)""",
        session.id,
        session.version_id,
        session.path,
        session.declared_size,
        session.declared_sha256,
        session.content_type,
        f"none/{session.id}",  # no object of its own: the content was stored already
        session.committed_size,
        artifact_id,
    )


async def get_session(
    conn: asyncpg.Connection, upload_id: str, *, for_update: bool = False
) -> UploadSession | None:
    lock = " FOR UPDATE OF s" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_FROM} WHERE s.id = $1::uuid{lock}", upload_id
    )
    if row is None:
        return None
    result = await get_artifact_by_id(conn, row["artifact_id"]) if row["artifact_id"] else None
    return session_from_row(row, result)


async def claim_session(
    conn: asyncpg.Connection, upload_id: str, writer: str, lease_s: float
) -> bool:
    """Make `writer` the session's only writer, unless another holds a live claim."""
    claimed = await conn.fetchval(
        """UPDATE upload_sessions
           SET writer = $2::uuid, lease_until = now() + make_interval(secs => $3)
           WHERE id = $1::uuid AND state = 'ACTIVE'
             AND (writer IS NULL OR writer = $2::uuid OR lease_until < now())
           RETURNING true""",
        upload_id,
        writer,
        lease_s,
    )
    return bool(claimed)


async def renew_claim(
    conn: asyncpg.Connection, upload_id: str, writer: str, lease_s: float
) -> bool:
    """Extend `writer`'s claim; False if it no longer holds one."""
    renewed = await conn.fetchval(
        """UPDATE upload_sessions SET lease_until = now() + make_interval(secs => $3)
           WHERE id = $1::uuid AND writer = $2::uuid AND state = 'ACTIVE'
           RETURNING true""",
        upload_id,
        writer,
        lease_s,
    )
    return bool(renewed)


async def release_session(conn: asyncpg.Connection, upload_id: str, writer: str) -> None:
    await conn.execute(
        "UPDATE upload_sessions SET writer = NULL WHERE id = $1::uuid AND writer = $2::uuid",
        upload_id,
        writer,
    )


async def record_part(
    conn: asyncpg.Connection,
    upload_id: str,
    writer: str,
    lease_s: float,
    part: tuple[int, str],
    committed_size: int,
    hash_state: bytes,
    summary: tuple[str, dict[str, str]] | None,
) -> bool:
    """Append a stored part and advance the committed size; False if the claim was lost."""
    recorded = await conn.fetchval(
        """UPDATE upload_sessions
           SET parts = parts || jsonb_build_array(jsonb_build_object('number', $3::int,
                                                                     'etag', $4::text)),
               committed_size = $5, hash_state = $6, summary = COALESCE(summary, $7),
               lease_until = now() + make_interval(secs => $8), update_time = now()
           WHERE id = $1::uuid AND writer = $2::uuid AND state = 'ACTIVE'
             AND committed_size <= $5
           RETURNING true""",
        upload_id,
        writer,
        part[0],
        part[1],
        committed_size,
        hash_state,
        summary_json(summary),
        lease_s,
    )
    return bool(recorded)


async def finish_session(
    conn: asyncpg.Connection, upload_id: str, state: UploadState, artifact_id: int | None
) -> None:
    version_id = await conn.fetchval(
        """UPDATE upload_sessions SET state = $2, artifact_id = $3, writer = NULL,
                  update_time = now()
           WHERE id = $1::uuid RETURNING version_id""",
        upload_id,
        state.value,
        artifact_id,
    )
    await refresh_version_status(conn, version_id)


async def refresh_version_status(conn: asyncpg.Connection, version_id: int) -> None:
    # Lock the version row first, in a statement of its own: sessions of one version ending
    # at once then count open sessions one after another, each in a snapshot taken after the
    # previous one committed. Counted in one UPDATE, each would see the other still ACTIVE
    # (READ COMMITTED re-checks the locked row, not the subquery) and leave the version PENDING.
    await lock_version_stage(conn, version_id)
    await conn.execute(
        """UPDATE model_versions SET status = CASE WHEN EXISTS (
               SELECT 1 FROM upload_sessions WHERE version_id = $1 AND state = 'ACTIVE')
               THEN 'PENDING' ELSE 'READY' END
           WHERE id = $1""",
        version_id,
    )


async def idle_sessions(conn: asyncpg.Connection, idle_s: float, limit: int) -> list[UploadSession]:
    rows = await conn.fetch(
        f"""SELECT {_SESSION_COLUMNS} FROM {_SESSION_FROM}
            WHERE s.state = 'ACTIVE' AND s.update_time < now() - make_interval(secs => $1)
              AND (s.writer IS NULL OR s.lease_until < now())
            LIMIT $2""",
        idle_s,
        limit,
    )
    return [session_from_row(r) for r in rows]
