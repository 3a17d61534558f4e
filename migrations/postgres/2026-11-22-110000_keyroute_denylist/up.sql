-- Revoked JWT ids and key ids, each until the time it stops mattering.
CREATE TABLE keyroute_denylist (
    id          TEXT COLLATE "C" PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX keyroute_denylist_expires_at ON keyroute_denylist (expires_at);
