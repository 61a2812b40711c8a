-- One D1 row fewer per run (D1 bills each index entry written): the runs index is keyed by
-- (function_id, started_at, id), the order its listings read, instead of by id with an index by
-- function and start beside it. A run id made by the engine is now a ULID of the run's start, so a
-- lookup by id alone seeks that key once per function present (db/runs.ts); rows whose id carries no
-- such time (runs started before this migration, a rerun with an idempotency key, a cron's run, a
-- batch's) say id_ordered NULL and keep an entry in runs_id.
CREATE TABLE runs_keyed (
  function_id   TEXT NOT NULL,
  started_at    INTEGER NOT NULL,
  id            TEXT NOT NULL,
  event_id      TEXT NOT NULL,
  status        TEXT NOT NULL,
  ended_at      INTEGER,
  checked_at    INTEGER,          -- when the tick last asked an unfinished run's object how it stands
  parent_run_id TEXT,             -- the run that started this one with step.invoke
  skip_reason   TEXT,             -- why flow control skipped it (status 'Skipped')
  at_receipt    INTEGER,          -- 1: started at its event's receipt, found through it
  stuck_reason  TEXT,
  stuck_since   INTEGER,
  steps         INTEGER,
  cost_usd      REAL,
  id_ordered    INTEGER,          -- 1: the id is a ULID of started_at, found by id through the key
  PRIMARY KEY (function_id, started_at, id)
) WITHOUT ROWID;
INSERT INTO runs_keyed (function_id, started_at, id, event_id, status, ended_at, checked_at, parent_run_id, skip_reason, at_receipt, stuck_reason, stuck_since, steps, cost_usd)
  SELECT function_id, started_at, id, event_id, status, ended_at, checked_at, parent_run_id, skip_reason, at_receipt, stuck_reason, stuck_since, steps, cost_usd FROM runs;
DROP TABLE runs;
ALTER TABLE runs_keyed RENAME TO runs;
CREATE INDEX runs_id ON runs (id) WHERE id_ordered IS NULL;
CREATE INDEX runs_event ON runs (event_id) WHERE at_receipt IS NOT 1;
CREATE INDEX runs_unfinished ON runs (checked_at) WHERE status IN ('Queued', 'Running');
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

-- Run ids are ULIDs only for runs started at or after an hour past this migration (runs started
-- before keep the 32-hex ids the code before derives): code of before and of after, both running
-- during an upgrade, derive the same id for a run either may start, so none starts twice
-- (platform/runId.ts). A database holding no run nor event takes ULIDs at once. Read on DB alone.
ALTER TABLE sweep_cursor ADD COLUMN ulid_runs_since INTEGER NOT NULL DEFAULT 0;  -- epoch ms
UPDATE sweep_cursor SET ulid_runs_since = CASE WHEN EXISTS (SELECT 1 FROM runs) OR EXISTS (SELECT 1 FROM events) THEN (CAST(strftime('%s', 'now') AS INTEGER) + 3600) * 1000 ELSE 0 END;
