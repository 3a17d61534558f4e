-- keyroute's users and API keys. Ids and user names are VARBINARY so they compare
-- byte-wise (case- and trailing-space-sensitive), as on every other backend; a
-- 1024-byte user name fits InnoDB's 3072-byte index limit. Keys are looked up by hash.
CREATE TABLE keyroute_users (
    id          VARBINARY(128) NOT NULL,
    user_name   VARBINARY(1024) NOT NULL,
    email       TEXT,
    tenant      VARCHAR(64),
    created_at  DATETIME(6) NOT NULL,
    meta        TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY keyroute_users_user_name_key (user_name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE keyroute_api_keys (
    id           VARBINARY(128) NOT NULL,
    user_id      VARBINARY(128),
    tenant       VARCHAR(64),
    key_type     VARCHAR(32) NOT NULL,
    environment  VARCHAR(32) NOT NULL,
    hash         BINARY(32) NOT NULL,
    hint         VARCHAR(64) NOT NULL,
    name         TEXT,
    created_at   DATETIME(6) NOT NULL,
    expires_at   DATETIME(6),
    cancelled_at DATETIME(6),
    last_used_at DATETIME(6),
    scopes       TEXT NOT NULL,
    notes        TEXT,
    ref_id       TEXT,
    meta         TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY keyroute_api_keys_hash_key (hash),
    KEY keyroute_api_keys_user_env (user_id, environment),
    CONSTRAINT keyroute_api_keys_user_fk FOREIGN KEY (user_id)
        REFERENCES keyroute_users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
