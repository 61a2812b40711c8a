-- The REST API's and the dashboard's listings: newest first, a page at a time by cursor (never OFFSET).
-- listRuns without a function, and functionStats (the runs of the last hours).
CREATE INDEX runs_started ON runs (started_at, id);
-- listRuns of one function.
CREATE INDEX runs_function_started ON runs (function_id, started_at, id);
