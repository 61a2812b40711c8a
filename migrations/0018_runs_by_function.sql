-- One D1 row fewer per run (D1 bills each index entry written): the runs index keeps no index of every run
-- by start. What read runs by start without a function (a listing of all runs, an event's runs, the
-- dashboard's counts, the daily spend, retention, a shard's oldest row) reads them function by function
-- through runs_function_started: the function ids present come from a skip-scan over that index, one seek
-- each (worker/db/runFunctions.ts).
DROP INDEX runs_started;
