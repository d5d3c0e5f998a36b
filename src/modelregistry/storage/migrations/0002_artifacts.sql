-- Artifacts: content-addressed blobs, the files of versions, and resumable upload sessions.

-- One stored object per distinct content.
CREATE TABLE blobs (
    sha256       text PRIMARY KEY,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    object_key   text NOT NULL UNIQUE,
    create_time  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE artifacts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id    bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    path          text NOT NULL,
    -- RESTRICT: garbage collection can never delete a blob an artifact still names.
    blob_sha256   text NOT NULL REFERENCES blobs (sha256) ON DELETE RESTRICT,
    size_bytes    bigint NOT NULL,
    content_type  text NOT NULL,
    summary       jsonb,
    create_time   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (version_id, path)
);
CREATE INDEX artifacts_blob ON artifacts (blob_sha256);

CREATE TABLE upload_sessions (
    id               uuid PRIMARY KEY,
    version_id       bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    path             text NOT NULL,
    declared_size    bigint,
    declared_sha256  text NOT NULL DEFAULT '',
    content_type     text NOT NULL,
    object_key       text NOT NULL UNIQUE,
    s3_upload_id     text NOT NULL,
    part_size        bigint NOT NULL,
    -- Bytes stored in completed parts, a prefix of the file; never decreases.
    committed_size   bigint NOT NULL DEFAULT 0,
    -- [{"number": n, "etag": "..."}] of the completed parts, in order.
    parts            jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- SHA-256 running state over the committed prefix (see modelregistry.hashing).
    hash_state       bytea NOT NULL,
    summary          jsonb,
    state            text NOT NULL DEFAULT 'ACTIVE'
                     CHECK (state IN ('ACTIVE', 'COMMITTED', 'ABORTED')),
    -- The stream writing now, and until when its claim holds without renewal.
    writer           uuid,
    lease_until      timestamptz,
    artifact_id      bigint REFERENCES artifacts (id) ON DELETE SET NULL,
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now()
);
-- One open upload per path: a second is ALREADY_EXISTS until the first ends.
CREATE UNIQUE INDEX upload_sessions_one_active_per_path
    ON upload_sessions (version_id, path) WHERE state = 'ACTIVE';
CREATE INDEX upload_sessions_idle ON upload_sessions (update_time) WHERE state = 'ACTIVE';
