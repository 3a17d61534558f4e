DROP TABLE keyroute_api_keys;
DROP TABLE keyroute_users;
