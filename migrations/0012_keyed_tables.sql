-- The event log and the runs index become WITHOUT ROWID tables keyed by what names their rows: a row
-- written is then one entry in its table, where a rowid table with a text key wrote a second entry in the
-- key's own index (D1 bills each). Same columns and indexes; the rows are copied over.

CREATE TABLE events_keyed (
  id            TEXT NOT NULL,     -- the sender's id (deduplication key for 24 h) or a ULID
  name          TEXT NOT NULL,
  data          TEXT NOT NULL,     -- JSON object
  user          TEXT,              -- JSON object
  v             TEXT,
  ts            INTEGER NOT NULL,  -- epoch ms; in the future for delayed runs
  received_at   INTEGER NOT NULL,  -- epoch ms the event API accepted it
  dispatched_at INTEGER,           -- set once every run it triggers is started
  swept_at      INTEGER,           -- when the tick last re-enqueued it undispatched
  PRIMARY KEY (id, received_at)
) WITHOUT ROWID;
INSERT INTO events_keyed (id, name, data, user, v, ts, received_at, dispatched_at, swept_at)
  SELECT id, name, data, user, v, ts, received_at, dispatched_at, swept_at FROM events;
DROP TABLE events;
ALTER TABLE events_keyed RENAME TO events;
CREATE INDEX events_undispatched ON events (received_at) WHERE dispatched_at IS NULL;
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_name ON events (name, received_at);

CREATE TABLE runs_keyed (
  id            TEXT NOT NULL PRIMARY KEY,
  function_id   TEXT NOT NULL,
  event_id      TEXT NOT NULL,
  status        TEXT NOT NULL,
  started_at    INTEGER NOT NULL,
  ended_at      INTEGER,
  checked_at    INTEGER,          -- when the tick last asked an unfinished run's object how it stands
  parent_run_id TEXT,             -- the run that started this one with step.invoke
  skip_reason   TEXT              -- why flow control skipped it (status 'Skipped')
) WITHOUT ROWID;
INSERT INTO runs_keyed (id, function_id, event_id, status, started_at, ended_at, checked_at, parent_run_id, skip_reason)
  SELECT id, function_id, event_id, status, started_at, ended_at, checked_at, parent_run_id, skip_reason FROM runs;
DROP TABLE runs;
ALTER TABLE runs_keyed RENAME TO runs;
CREATE INDEX runs_event ON runs (event_id);
CREATE INDEX runs_unfinished ON runs (checked_at) WHERE status IN ('Queued', 'Running');
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_started ON runs (started_at, id);
CREATE INDEX runs_function_started ON runs (function_id, started_at, id);
