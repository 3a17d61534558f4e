DROP TABLE keyroute_denylist;
