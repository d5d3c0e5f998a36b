-- Web UI sessions, shared by every replica. The cookie holds a random session id; only its
-- SHA-256 is stored, with the SHA-256 of the token that signed in (tokens.token_hash), so a
-- read of this table yields neither a usable cookie nor a token. Each request re-checks the
-- token through the Authenticator: a revoked or expired token ends its sessions.

CREATE TABLE ui_sessions (
    id_hash      bytea PRIMARY KEY,
    token_hash   bytea NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    expire_time  timestamptz NOT NULL
);

CREATE INDEX ui_sessions_expire_time ON ui_sessions (expire_time);
