DROP TABLE keyroute_audit;
