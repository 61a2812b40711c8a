-- Retention (DESIGN "A run's records"): the tick deletes rows older than STEPFLARE_RETENTION_DAYS,
-- oldest first, a few hundred per tick.

-- deleteOldEventsStatement (pruneExpired): events by received_at.
CREATE INDEX events_received ON events (received_at);

-- deleteEndedRunsStatement (pruneExpired): finished runs by ended_at. An unfinished run has no ended_at, is not in
-- this index, and keeps its row however old it is.
CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;
