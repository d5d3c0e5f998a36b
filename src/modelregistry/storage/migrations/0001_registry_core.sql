-- The registry core: models, versions, lifecycle history, aliases and the audit log.

CREATE TABLE models (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    description     text NOT NULL DEFAULT '',
    owner           text NOT NULL DEFAULT '',
    labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Version numbers come from this counter (UPDATE ... RETURNING), never MAX()+1:
    -- the row lock serialises concurrent creates and a rollback returns the number.
    latest_version  bigint NOT NULL DEFAULT 0,
    revision        bigint NOT NULL DEFAULT 1,
    request_id      text UNIQUE,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_versions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id             bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    version              bigint NOT NULL,
    description          text NOT NULL DEFAULT '',
    source_repository    text NOT NULL DEFAULT '',
    source_commit        text NOT NULL DEFAULT '',
    source_entry_point   text NOT NULL DEFAULT '',
    run_id               text NOT NULL DEFAULT '',
    training_datasets    jsonb NOT NULL DEFAULT '[]'::jsonb,
    evaluation_datasets  jsonb NOT NULL DEFAULT '[]'::jsonb,
    derived_from         text NOT NULL DEFAULT '',
    parameters           jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics              jsonb NOT NULL DEFAULT '{}'::jsonb,
    input_schema         jsonb NOT NULL DEFAULT '[]'::jsonb,
    output_schema        jsonb NOT NULL DEFAULT '[]'::jsonb,
    labels               jsonb NOT NULL DEFAULT '{}'::jsonb,
    stage                text NOT NULL DEFAULT 'DEVELOPMENT'
                         CHECK (stage IN ('DEVELOPMENT', 'STAGING', 'PRODUCTION', 'ARCHIVED')),
    status               text NOT NULL DEFAULT 'READY' CHECK (status IN ('PENDING', 'READY')),
    created_by           text NOT NULL DEFAULT '',
    request_id           text,
    revision             bigint NOT NULL DEFAULT 1,
    create_time          timestamptz NOT NULL DEFAULT now(),
    update_time          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, version),
    UNIQUE (model_id, request_id)
);

-- At most one PRODUCTION version per model, whatever the interleaving of transactions.
CREATE UNIQUE INDEX model_versions_one_production
    ON model_versions (model_id) WHERE stage = 'PRODUCTION';
CREATE INDEX model_versions_create_time ON model_versions (create_time, id);

CREATE TABLE model_aliases (
    model_id     bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    alias        text NOT NULL,
    version_id   bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    PRIMARY KEY (model_id, alias)
);
CREATE INDEX model_aliases_version ON model_aliases (version_id);

CREATE TABLE alias_changes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id      bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    alias         text NOT NULL,
    from_version  bigint,
    to_version    bigint,
    principal     text NOT NULL,
    time          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alias_changes_model ON alias_changes (model_id, id);

CREATE TABLE stage_transitions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id    bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    from_stage    text NOT NULL,
    to_stage      text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    principal     text NOT NULL,
    time          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stage_transitions_version ON stage_transitions (version_id, id);

-- Append-only: no foreign keys, so deleting a model keeps its history.
CREATE TABLE audit_events (
    sequence     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time         timestamptz NOT NULL DEFAULT now(),
    principal    text NOT NULL,
    action       text NOT NULL,
    resource     text NOT NULL,
    request_id   text NOT NULL DEFAULT '',
    before       jsonb,
    after        jsonb
);
CREATE INDEX audit_events_resource ON audit_events (resource, sequence);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Shared by every replica, so a page token made by one is accepted by all.
CREATE TABLE server_secrets (
    name    text PRIMARY KEY,
    value   bytea NOT NULL
);
INSERT INTO server_secrets (name, value)
VALUES ('page_token_key',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
