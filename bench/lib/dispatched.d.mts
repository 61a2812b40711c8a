/** SQL for when a row of `events` (named `table`) was dispatched, NULL while it is not (worker/db/events.ts's dispatchedAtSql). */
export function dispatchedAtSql(table?: string): string;
