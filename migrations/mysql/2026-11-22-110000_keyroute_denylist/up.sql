-- Revoked JWT ids and key ids, each until the time it stops mattering.
CREATE TABLE keyroute_denylist (
    id          VARBINARY(128) NOT NULL,
    expires_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY keyroute_denylist_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
