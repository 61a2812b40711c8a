-- Runaway guards (docs/production.md "Runaway guards"): fields on rows written anyway, no row or index of their own.

-- How many events in a row, each sent by a run the one before started, led to this event (NULL: 0, an
-- event from outside). A run's sends carry its trigger's depth plus one; past STEPFLARE_MAX_EVENT_DEPTH
-- the send fails its step.
ALTER TABLE events ADD COLUMN depth INTEGER;

-- Written with a run's end: its steps (a function's `budget.steps` counts them) and its estimated cost
-- in dollars at list price (STEPFLARE_BUDGET_DAILY sums them; the dashboard shows them per function).
ALTER TABLE runs ADD COLUMN steps INTEGER;
ALTER TABLE runs ADD COLUMN cost_usd REAL;

-- Why a function is paused, when the engine paused it (a budget); NULL for an operator's pause.
ALTER TABLE function_pauses ADD COLUMN reason TEXT;
