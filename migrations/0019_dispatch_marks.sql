-- An event's dispatched mark without a write of its row: a pass that dispatches several events (a queue
-- batch's chunk, a request's events) records them in one row per second of their receipt, instead of
-- updating each event's row (D1 bills a row written per event updated). An event is dispatched when its
-- row's dispatched_at is set or a row here names it. Rows go with the events they name (retention).
CREATE TABLE dispatch_marks (
  second INTEGER NOT NULL,  -- received_at / 1000 of every event the row names
  pass   TEXT NOT NULL,     -- the pass's id (a ULID), and the part's number when its refs take several rows
  refs   TEXT NOT NULL,     -- JSON [[id, received_at], …]
  at     INTEGER NOT NULL,  -- epoch ms: when they were dispatched
  PRIMARY KEY (second, pass)
) WITHOUT ROWID;
