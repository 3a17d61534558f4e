-- When a denial takes effect: NULL at once, or later (a key rolled with a grace period
-- is denied from the end of its grace).
ALTER TABLE keyroute_denylist ADD COLUMN denied_from BIGINT;
