-- What an update can change beyond a key's original columns: whether it is enabled,
-- the address ranges it may be used from (space-separated CIDR text; NULL for
-- anywhere), and its revision, which every update raises and checks, so two updates
-- racing each other never undo one another.
ALTER TABLE keyroute_api_keys ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE keyroute_api_keys ADD COLUMN allowed_networks TEXT;
ALTER TABLE keyroute_api_keys ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
