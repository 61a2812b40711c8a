-- One index entry fewer per event (D1 bills each entry written). An event whose id is a ULID of the
-- millisecond it was received (the engine's own ids for events sent without one) is ordered by receipt in
-- the primary key (id, received_at) already: a ULID starts with its time. Such a row says so in
-- `id_ordered` and enters no index by receipt; the listing, the sweep and retention read those rows by
-- their ids' time prefix. Every other row (an id the sender chose, a step's or the engine's named ids, and
-- every row stored before this migration) stays in the index by receipt.
ALTER TABLE events ADD COLUMN id_ordered INTEGER;  -- 1: the id is a ULID of received_at
DROP INDEX events_received;
CREATE INDEX events_received ON events (received_at) WHERE id_ordered IS NULL;
-- No row received before this migration (less a day, for clocks) is ordered by its id: reads by id prefix
-- start there, never reading the ids of other kinds that sort below the ULIDs of that time.
ALTER TABLE sweep_cursor ADD COLUMN ordered_since INTEGER NOT NULL DEFAULT 0;  -- epoch ms
UPDATE sweep_cursor SET ordered_since = (CAST(strftime('%s', 'now') AS INTEGER) - 86400) * 1000;
