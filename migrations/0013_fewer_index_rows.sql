-- Two index entries fewer per event and run (D1 bills each entry written): an event no longer enters an
-- index of undispatched events when it is stored, and a run started at its event's receipt no longer
-- enters the index by event id.

-- The sweep finds events lost from the queue by reading the events received since a cursor (index
-- events_received) instead of keeping an index of every event until it is dispatched. Events it has swept
-- and that are still not dispatched, a rare few, are found again through events_resweep.
CREATE TABLE sweep_cursor (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  swept_to INTEGER NOT NULL  -- epoch ms: every event received before it is dispatched, or swept at least once
);
INSERT INTO sweep_cursor (id, swept_to)
  SELECT 1, COALESCE((SELECT MIN(received_at) FROM events WHERE dispatched_at IS NULL AND swept_at IS NULL), (SELECT MAX(received_at) FROM events), 0);
DROP INDEX events_undispatched;
CREATE INDEX events_resweep ON events (swept_at) WHERE dispatched_at IS NULL AND swept_at IS NOT NULL;

-- A run started at its event's receipt (its id derived from the event and that time) is found through the
-- event: its index row's started_at is the event's received_at (index runs_started). Only other runs of an
-- event (re-runs, batches, debounces) and rows written before this migration (at_receipt NULL) stay in the
-- index by event id.
ALTER TABLE runs ADD COLUMN at_receipt INTEGER;  -- 1: started at its event's receipt, found through it
DROP INDEX runs_event;
CREATE INDEX runs_event ON runs (event_id) WHERE at_receipt IS NOT 1;
