-- An event id sent again after the 24 h dedup window is a new event (as in Inngest): both are kept,
-- so the log is keyed by (id, received_at) instead of id alone. received_at is also what a run's id
-- is derived from, so (id, received_at) names one accepted event everywhere (queue refs, sweep, runs).
-- Two rows never share both: an id received again within 24 h is a duplicate and is not inserted.
CREATE TABLE events_by_receipt (
  id            TEXT NOT NULL,     -- the sender's id (deduplication key for 24 h) or a ULID
  name          TEXT NOT NULL,
  data          TEXT NOT NULL,     -- JSON object
  user          TEXT,              -- JSON object
  v             TEXT,
  ts            INTEGER NOT NULL,  -- epoch ms; in the future for delayed runs
  received_at   INTEGER NOT NULL,  -- epoch ms the event API accepted it
  dispatched_at INTEGER,           -- set once every run it triggers is started
  swept_at      INTEGER,           -- when the tick last re-enqueued it undispatched
  -- Also the index of insertEvents' dedup check, getEvent (newest with an id), getEvents and markDispatched.
  PRIMARY KEY (id, received_at)
);

INSERT INTO events_by_receipt (id, name, data, user, v, ts, received_at, dispatched_at, swept_at)
  SELECT id, name, data, user, v, ts, received_at, dispatched_at, swept_at FROM events;

DROP TABLE events;
ALTER TABLE events_by_receipt RENAME TO events;

-- sweepUndispatchedEvents (the sweep that re-enqueues events lost from the queue).
CREATE INDEX events_undispatched ON events (received_at) WHERE dispatched_at IS NULL;
