-- The audit trail: one row per change to keys and users, written in the change's own
-- transaction, appended and never updated (the retention purge deletes old rows).
-- `details` is a JSON object of ids, names, scopes and times: never a secret or a hash.
CREATE TABLE keyroute_audit (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    key_id      TEXT,
    environment TEXT,
    user_id     TEXT,
    details     TEXT NOT NULL,
    source      TEXT,
    request_id  TEXT
);
CREATE INDEX keyroute_audit_key ON keyroute_audit (key_id, id);
CREATE INDEX keyroute_audit_user ON keyroute_audit (user_id, id);
CREATE INDEX keyroute_audit_at ON keyroute_audit (at);
