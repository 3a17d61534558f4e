-- keyroute's users and API keys. Ids and user names compare byte-wise (COLLATE "C"),
-- as on every other backend. Keys are looked up by hash only.
CREATE TABLE keyroute_users (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_name   TEXT COLLATE "C" NOT NULL,
    email       TEXT,
    tenant      TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    meta        TEXT NOT NULL,
    CONSTRAINT keyroute_users_user_name_key UNIQUE (user_name)
);

CREATE TABLE keyroute_api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    user_id      TEXT COLLATE "C" REFERENCES keyroute_users (id) ON DELETE CASCADE,
    tenant       TEXT,
    key_type     TEXT NOT NULL,
    environment  TEXT NOT NULL,
    hash         BYTEA NOT NULL,
    hint         TEXT NOT NULL,
    name         TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    scopes       TEXT NOT NULL,
    notes        TEXT,
    ref_id       TEXT,
    meta         TEXT NOT NULL,
    CONSTRAINT keyroute_api_keys_hash_key UNIQUE (hash),
    CONSTRAINT keyroute_api_keys_hash_length CHECK (octet_length(hash) = 32)
);

CREATE INDEX keyroute_api_keys_user_env ON keyroute_api_keys (user_id, environment);
