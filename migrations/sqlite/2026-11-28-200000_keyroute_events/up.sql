-- The change feed: one row per change other instances' caches must learn of (a key
-- revoked or rolled, a deny-list entry), written in the change's own transaction and
-- polled by every instance (`id > last ORDER BY id`). AUTOINCREMENT: ids are never
-- reused, even after old rows are purged, so a poller's position stays meaningful.
-- `subject` is an id (key id, denied id), never a secret or a hash.
CREATE TABLE keyroute_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX keyroute_events_created_at ON keyroute_events (created_at);
