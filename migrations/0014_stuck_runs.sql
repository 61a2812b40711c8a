-- Stuck runs (docs/production.md "Stuck runs"): the tick's verdict on an unfinished run, written in the
-- UPDATE that already notes when it asked the run's object (checked_at), so finding stuck runs costs no
-- row of its own. No index: the health counts and the stuck listing read the unfinished runs through
-- runs_unfinished, and a run's row is written once per check either way.
ALTER TABLE runs ADD COLUMN stuck_reason TEXT;  -- overdue | no_alarm | function_missing | retrying; NULL when it moves on its own
ALTER TABLE runs ADD COLUMN stuck_since INTEGER; -- epoch ms since when the run has been stuck for that reason
