-- The audit trail: one row per change to keys and users, written in the change's own
-- transaction, appended and never updated (the retention purge deletes old rows).
-- `details` is a JSON object of ids, names, scopes and times: never a secret or a hash.
CREATE TABLE keyroute_audit (
    id          BIGINT NOT NULL AUTO_INCREMENT,
    at          DATETIME(6) NOT NULL,
    actor       VARCHAR(255) NOT NULL,
    action      VARCHAR(64) NOT NULL,
    key_id      VARBINARY(128),
    environment VARCHAR(32),
    user_id     VARBINARY(128),
    details     TEXT NOT NULL,
    source      VARCHAR(64),
    request_id  VARCHAR(128),
    PRIMARY KEY (id),
    KEY keyroute_audit_key (key_id, id),
    KEY keyroute_audit_user (user_id, id),
    KEY keyroute_audit_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
