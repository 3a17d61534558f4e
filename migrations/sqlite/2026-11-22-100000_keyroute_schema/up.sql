-- keyroute's users and API keys. Timestamps are microseconds since the epoch, so they
-- compare as numbers. Keys are looked up by hash only.
CREATE TABLE keyroute_users (
    id          TEXT NOT NULL PRIMARY KEY,
    user_name   TEXT NOT NULL UNIQUE,
    email       TEXT,
    tenant      TEXT,
    created_at  BIGINT NOT NULL,
    meta        TEXT NOT NULL
);

CREATE TABLE keyroute_api_keys (
    id           TEXT NOT NULL PRIMARY KEY,
    user_id      TEXT REFERENCES keyroute_users (id) ON DELETE CASCADE,
    tenant       TEXT,
    key_type     TEXT NOT NULL,
    environment  TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
    hint         TEXT NOT NULL,
    name         TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    cancelled_at BIGINT,
    last_used_at BIGINT,
    scopes       TEXT NOT NULL,
    notes        TEXT,
    ref_id       TEXT,
    meta         TEXT NOT NULL
);

CREATE INDEX keyroute_api_keys_user_env ON keyroute_api_keys (user_id, environment);
