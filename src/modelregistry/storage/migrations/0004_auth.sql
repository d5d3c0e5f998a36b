-- Principals, their roles (globally or on one model), and bearer tokens stored only as hashes.

CREATE TABLE principals (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    -- The role everywhere; grants below add roles on single models.
    role         text NOT NULL CHECK (role IN ('viewer', 'editor', 'approver', 'admin')),
    create_time  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_grants (
    principal_id  bigint NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    model_name    text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'editor', 'approver', 'admin')),
    PRIMARY KEY (principal_id, model_name)
);

CREATE TABLE tokens (
    id            uuid PRIMARY KEY,
    principal_id  bigint NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    -- SHA-256 of the token: tokens are 256 random bits, so a fast hash is enough to make a
    -- stolen table useless, and lookups stay one index probe.
    token_hash    bytea NOT NULL UNIQUE,
    description   text NOT NULL DEFAULT '',
    create_time   timestamptz NOT NULL DEFAULT now(),
    expire_time   timestamptz,
    revoke_time   timestamptz
);
