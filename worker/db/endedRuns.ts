import type { RunStatus } from "../platform/types.ts";
import { FUNCTION_IDS_WITH_RUNS } from "./runFunctions.ts";

// The runs index rows retention deletes (schedule/retention.ts): found first, so that their runs'
// objects can be told, then deleted exactly.

/** The key of a runs index row, and its status (a skipped run has no object). */
export interface RunIndexKey {
  function_id: string;
  started_at: number;
  id: string;
  status: RunStatus;
}

/**
 * Up to `limit` keys of index rows of runs that ended before `before` (retention): those the index
 * meets first, each function's oldest, the functions in id order. Unfinished runs have no end and
 * are never among them.
 *
 * @example
 * const keys = await endedRunKeys(env.DB, Date.now() - 30 * 86_400_000, 500);
 */
export async function endedRunKeys(db: D1Database, before: number, limit: number): Promise<RunIndexKey[]> {
  // Uses the primary key, a seek per function present (runFunctions.ts): a run that ended before
  // `before` started before it. Runs started before it that have not ended by then are read past,
  // never written (an index of ends would cost every end a row); it stops at `limit` runs.
  const { results } = await db
    .prepare(`SELECT function_id, started_at, id, status FROM runs WHERE function_id IN (${FUNCTION_IDS_WITH_RUNS}) AND started_at < ?1 AND ended_at < ?1 LIMIT ?2`)
    .bind(before, limit)
    .all<RunIndexKey>();
  return results;
}

/**
 * Statement deleting exactly the index rows of `keys`, a seek of the primary key each: the keys
 * travel as one JSON parameter, since D1 binds at most 100.
 *
 * @example
 * await deleteRunKeysStatement(env.DB, await endedRunKeys(env.DB, before, 500)).run();
 */
export function deleteRunKeysStatement(db: D1Database, keys: readonly Pick<RunIndexKey, "function_id" | "started_at" | "id">[]): D1PreparedStatement {
  // The casts give the values the columns' types: without them SQLite seeks by function_id alone.
  return db
    .prepare(
      `DELETE FROM runs WHERE (function_id, started_at, id) IN (SELECT CAST(value ->> 0 AS TEXT), CAST(value ->> 1 AS INTEGER), CAST(value ->> 2 AS TEXT) FROM json_each(?1))`,
    )
    .bind(JSON.stringify(keys.map((key) => [key.function_id, key.started_at, key.id])));
}
