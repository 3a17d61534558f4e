-- Usage limits and credits. `limits`: the key's own rate limits as a JSON list (NULL
-- for none). The credits: the balance (NULL for an unmetered key), the refill as text
-- (`1000/daily`, `1000/monthly`, `1000/1h`; NULL for none) and the next refill's
-- instant. The balance is spent by one conditional UPDATE per request, and a refill is
-- applied only by the write that still sees the old refill instant, so it happens once.
ALTER TABLE keyroute_api_keys ADD COLUMN limits TEXT;
ALTER TABLE keyroute_api_keys ADD COLUMN credits_remaining BIGINT;
ALTER TABLE keyroute_api_keys ADD COLUMN credits_refill TEXT;
ALTER TABLE keyroute_api_keys ADD COLUMN credits_next_refill_at TIMESTAMPTZ;
