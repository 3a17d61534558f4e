ALTER TABLE keyroute_api_keys DROP COLUMN revision;
ALTER TABLE keyroute_api_keys DROP COLUMN allowed_networks;
ALTER TABLE keyroute_api_keys DROP COLUMN enabled;
