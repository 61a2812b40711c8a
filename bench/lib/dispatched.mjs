// For the bench's and chaos's checks, which read D1 with `wrangler d1 execute`: when an event was
// dispatched, as the engine's dispatchedAtSql (worker/db/events.ts) says it.

/**
 * SQL for when a row of `events` (named `table` in the query) was dispatched, NULL while it is not:
 * its own `dispatched_at`, or the time of the `dispatch_marks` row that names it (migration 0019).
 *
 * @example
 * `SELECT id FROM events WHERE ${dispatchedAtSql()} IS NULL`
 */
export function dispatchedAtSql(table = "events") {
  return `COALESCE(${table}.dispatched_at, (SELECT m.at FROM dispatch_marks AS m, json_each(m.refs) AS r
    WHERE m.second = ${table}.received_at / 1000 AND r.value ->> 0 = ${table}.id AND r.value ->> 1 = ${table}.received_at))`;
}
