ALTER TABLE keyroute_denylist DROP COLUMN denied_from;
