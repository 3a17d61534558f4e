ALTER TABLE keyroute_api_keys DROP COLUMN credits_next_refill_at;
ALTER TABLE keyroute_api_keys DROP COLUMN credits_refill;
ALTER TABLE keyroute_api_keys DROP COLUMN credits_remaining;
ALTER TABLE keyroute_api_keys DROP COLUMN limits;
