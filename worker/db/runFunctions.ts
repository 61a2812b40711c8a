// The runs index has no index of every run by start (migration 0018: it cost each run a D1 row written);
// it is keyed by (function_id, started_at, id) (migration 0020). What reads runs by start across
// functions reads them function by function, from the function ids this file's CTE finds.

/**
 * A common table expression `fns(id)`: each function id present in this database's runs table, in
 * order, then one NULL that ends the walk. A skip-scan: each row is one seek in index
 * the primary key to the next larger function id, so it reads one index entry per function,
 * however many runs each has.
 *
 * @example
 * db.prepare(`${FUNCTIONS_WITH_RUNS} SELECT id FROM fns WHERE id IS NOT NULL`);
 */
export const FUNCTIONS_WITH_RUNS =
  "WITH RECURSIVE fns(id) AS (SELECT MIN(function_id) FROM runs UNION ALL SELECT (SELECT MIN(function_id) FROM runs WHERE function_id > fns.id) FROM fns WHERE fns.id IS NOT NULL)";

/**
 * A subquery answering the function ids present in the runs table, for `function_id IN (…)`: the
 * condition then seeks the primary key once per function.
 *
 * @example
 * db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE function_id IN (${FUNCTION_IDS_WITH_RUNS}) AND started_at >= ?1`);
 */
export const FUNCTION_IDS_WITH_RUNS = `${FUNCTIONS_WITH_RUNS} SELECT id FROM fns WHERE id IS NOT NULL`;
