-- Collaboration on versions: threaded comments, flags that block promotion, deployments.

CREATE TABLE comments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id   bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    parent_id    bigint,
    author       text NOT NULL,
    body         text NOT NULL,
    request_id   text,
    create_time  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (version_id, id),
    UNIQUE (version_id, request_id),
    -- A reply answers a comment of the same version. NO ACTION (checked at the end of the
    -- statement): deleting a version takes a whole thread at once.
    FOREIGN KEY (version_id, parent_id) REFERENCES comments (version_id, id)
);
CREATE INDEX comments_parent ON comments (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE flags (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id    bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    severity      text NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    reason        text NOT NULL,
    raised_by     text NOT NULL,
    state         text NOT NULL DEFAULT 'OPEN' CHECK (state IN ('OPEN', 'RESOLVED')),
    resolved_by   text NOT NULL DEFAULT '',
    resolution    text NOT NULL DEFAULT '',
    resolve_time  timestamptz,
    request_id    text,
    create_time   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (version_id, request_id),
    CHECK ((state = 'OPEN') = (resolve_time IS NULL))
);
CREATE INDEX flags_version ON flags (version_id, id);
-- The promotion check reads only open flags.
CREATE INDEX flags_open ON flags (version_id) WHERE state = 'OPEN';

CREATE TABLE deployments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id   bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    environment  text NOT NULL,
    endpoint     text NOT NULL,
    status       text NOT NULL CHECK (status IN ('PENDING', 'ACTIVE', 'FAILED', 'RETIRED')),
    deployed_by  text NOT NULL,
    request_id   text,
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (version_id, request_id)
);
CREATE INDEX deployments_version ON deployments (version_id, id);
