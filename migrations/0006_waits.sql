-- Waits (DESIGN "Waits"): one row per condition of an open step.waitForEvent, and per cancelOn entry
-- of a run that has not ended. An incoming event finds its waits by (event name, match key), never by
-- evaluating every open wait.
CREATE TABLE waits (
  id         TEXT PRIMARY KEY,  -- run id, step id (empty for cancelOn) and condition index
  kind       TEXT NOT NULL,     -- 'wait' resumes a step; 'cancel' cancels the run
  run_id     TEXT NOT NULL,
  step_id    TEXT NOT NULL,
  idx        INTEGER NOT NULL,  -- which condition of the step (or which cancelOn entry)
  event_name TEXT NOT NULL,
  match_key  TEXT,              -- the field path and value the event must have ('data.userId="u1"'); NULL: none
  expression TEXT,              -- the CEL the key does not decide, over event (the trigger) and async
  trigger    TEXT,              -- the run's trigger event (JSON), when expression needs it
  since      INTEGER NOT NULL,  -- events received from this time on count
  expires_at INTEGER NOT NULL
);
-- findWaitsStatement (the queue consumer): waits by event name and key.
CREATE INDEX waits_lookup ON waits (event_name, match_key);
-- deleteRunWaitsStatement (a run's end removes its waits).
CREATE INDEX waits_run ON waits (run_id);
-- pruneExpiredWaitsStatement (the tick deletes timed-out waits).
CREATE INDEX waits_expiry ON waits (expires_at);

-- eventsSinceStatement (a wait's lookback, and the events that came while it was being stored):
-- events of a name by receipt. One more index entry per event.
CREATE INDEX events_name ON events (name, received_at);

-- A run started by step.invoke knows its parent (GET /v1/runs/:runId shows both ways).
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
-- childrenOf (GET /v1/runs/:runId): only child runs are in this index.
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

-- Bulk cancellations (POST /v1/cancellations), worked through a page at a time.
CREATE TABLE cancellations (
  id             TEXT PRIMARY KEY,
  function_id    TEXT NOT NULL,
  started_after  INTEGER NOT NULL,
  started_before INTEGER NOT NULL,
  expression     TEXT,              -- CEL over event (the run's trigger): only matching runs are cancelled
  cursor         TEXT NOT NULL DEFAULT '',  -- the last run id of the last page done
  cancelled      INTEGER NOT NULL DEFAULT 0,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  done_at        INTEGER
);
