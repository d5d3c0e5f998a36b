-- Promotion policies, approvals, and the indexes that answer "who held X at time T".

-- One row per model that has a policy of its own; a model without one has the default
-- (no metrics, no approvals, open flags block, no protected aliases).
CREATE TABLE promotion_policies (
    model_id            bigint PRIMARY KEY REFERENCES models (id) ON DELETE CASCADE,
    -- [{"metric": "accuracy", "comparator": ">=", "threshold": 0.9}, ...], in the caller's order.
    required_metrics    jsonb NOT NULL DEFAULT '[]'::jsonb
                        CHECK (jsonb_typeof(required_metrics) = 'array'),
    required_approvals  integer NOT NULL DEFAULT 0 CHECK (required_approvals BETWEEN 0 AND 32),
    allow_open_flags    boolean NOT NULL DEFAULT false,
    protected_aliases   text[] NOT NULL DEFAULT '{}',
    -- The etag is (model id, revision); the default policy is revision 0, a stored one 1 and up.
    revision            bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    updated_by          text NOT NULL,
    update_time         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE approvals (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id   bigint NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    principal    text NOT NULL,
    comment      text NOT NULL DEFAULT '',
    create_time  timestamptz NOT NULL DEFAULT now(),
    -- One approval per principal and version, however many calls race to record it
    -- (INSERT ... ON CONFLICT DO NOTHING): the count of rows is the count of approvers.
    UNIQUE (version_id, principal)
);
CREATE INDEX approvals_version ON approvals (version_id, id);

-- ListModelHistory windows each history table per version, alias or environment by time.
CREATE INDEX stage_transitions_version_time ON stage_transitions (version_id, time, id);
CREATE INDEX alias_changes_model_alias_time ON alias_changes (model_id, alias, time, id);
CREATE INDEX deployments_version_environment
    ON deployments (version_id, environment, create_time, id);
