-- When the tick last asked an unfinished run's object for its status (DESIGN "Cron and the tick"):
-- repairs index rows whose end was lost with the queue's contents under wrangler dev.
ALTER TABLE runs ADD COLUMN checked_at INTEGER;
-- unfinishedRuns (the tick's index repair).
CREATE INDEX runs_unfinished ON runs (checked_at) WHERE status IN ('Queued', 'Running');
