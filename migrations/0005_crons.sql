-- Cron triggers (DESIGN "Cron and the tick"): one row per (function, cron trigger), kept in step with
-- the registered functions by every tick, with the next time it is due.
CREATE TABLE crons (
  function_id TEXT NOT NULL,
  cron        TEXT NOT NULL,     -- the trigger as the function wrote it, with its TZ= prefix
  timezone    TEXT NOT NULL,     -- IANA zone the pattern is read in (UTC without a prefix)
  next_at     INTEGER NOT NULL,  -- epoch ms of the next scheduled time
  PRIMARY KEY (function_id, cron)
);
