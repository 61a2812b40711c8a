-- The event log: the source of truth for accepted events (DESIGN "Ingest").
CREATE TABLE events (
  id            TEXT PRIMARY KEY,  -- the sender's id (deduplication key) or a ULID
  name          TEXT NOT NULL,
  data          TEXT NOT NULL,     -- JSON object
  user          TEXT,              -- JSON object
  v             TEXT,
  ts            INTEGER NOT NULL,  -- epoch ms; in the future for delayed runs
  received_at   INTEGER NOT NULL,  -- epoch ms the event API accepted it
  dispatched_at INTEGER            -- set once every run it triggers is started
);
-- undispatchedEventIds (the sweep that re-enqueues events lost from the queue).
CREATE INDEX events_undispatched ON events (received_at) WHERE dispatched_at IS NULL;

-- The runs index: where to find runs; each RunObject holds its run's truth.
CREATE TABLE runs (
  id          TEXT PRIMARY KEY,
  function_id TEXT NOT NULL,
  event_id    TEXT NOT NULL,
  status      TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  ended_at    INTEGER
);
-- runsOfEvent (GET /v1/events/:eventId/runs).
CREATE INDEX runs_event ON runs (event_id);
