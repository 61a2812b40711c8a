-- When the tick last asked an unfinished run's object for its status (DESIGN "Cron and the tick"):
-- repairs index rows whose end was lost with the queue's contents under wrangler dev.
ALTER TABLE runs ADD COLUMN checked_at INTEGER;
-- unfinishedRuns (the tick's index repair).
CREATE INDEX runs_unfinished ON runs (checked_at) WHERE status IN ('Queued', 'Running');

-- When the tick last re-enqueued an undispatched event: an event that is only slow (a queue backlog)
-- is sent again at most once per RESWEEP_AFTER_MS, not at every tick.
ALTER TABLE events ADD COLUMN swept_at INTEGER;
