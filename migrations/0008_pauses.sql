-- Paused functions (POST /v1/functions/:id/pause): their events are recorded, their runs not started.
CREATE TABLE function_pauses (
  function_id TEXT PRIMARY KEY,
  paused_at   INTEGER NOT NULL,
  skip        INTEGER NOT NULL DEFAULT 0,  -- 1: on resume, the events recorded meanwhile are skipped
  resumed_at  INTEGER                      -- set on resume; the row goes once its recorded events are worked through
);
-- The events that came for a paused function, started (or skipped) in order on resume.
CREATE TABLE paused_events (
  function_id TEXT NOT NULL,
  event_id    TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  position    INTEGER NOT NULL,
  PRIMARY KEY (function_id, received_at, position, event_id)
);
