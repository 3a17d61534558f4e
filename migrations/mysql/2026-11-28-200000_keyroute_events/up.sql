-- The change feed: one row per change other instances' caches must learn of (a key
-- revoked or rolled, a deny-list entry), written in the change's own transaction and
-- polled by every instance (`id > last ORDER BY id`, on the primary key). Ids may
-- commit out of order (see the poller in keyroute-store's sql/events.rs).
-- `subject` is an id (key id, denied id), never a secret or a hash.
CREATE TABLE keyroute_events (
    id          BIGINT NOT NULL AUTO_INCREMENT,
    kind        VARCHAR(16) NOT NULL,
    subject     VARCHAR(255) NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY keyroute_events_created_at (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
