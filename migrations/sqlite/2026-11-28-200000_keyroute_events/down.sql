DROP TABLE keyroute_events;
