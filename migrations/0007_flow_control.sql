-- Flow control (DESIGN "Flow control"): a run a rate limit skipped has no Durable Object; its row in the
-- runs index, status 'Skipped', is its whole record, with the reason.
ALTER TABLE runs ADD COLUMN skip_reason TEXT;
