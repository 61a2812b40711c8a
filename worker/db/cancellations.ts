import type { Env } from "../platform/env.ts";
import { fromEveryShard } from "./shards.ts";

/** A row of the D1 `cancellations` table (migration 0006): one bulk cancellation and how far it got. */
export interface CancellationRow {
  id: string;
  function_id: string;
  started_after: number;
  started_before: number;
  expression: string | null;
  cursor: string;
  cancelled: number;
  created_at: number;
  updated_at: number;
  done_at: number | null;
}

export function insertCancellationStatement(db: D1Database, row: Omit<CancellationRow, "cursor" | "cancelled" | "done_at">): D1PreparedStatement {
  return db
    .prepare("INSERT INTO cancellations (id, function_id, started_after, started_before, expression, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
    .bind(row.id, row.function_id, row.started_after, row.started_before, row.expression, row.created_at, row.updated_at);
}

export async function findCancellation(db: D1Database, id: string): Promise<CancellationRow | null> {
  return (await db.prepare("SELECT * FROM cancellations WHERE id = ?1").bind(id).all<CancellationRow>()).results[0] ?? null;
}

/**
 * The next page of unfinished runs (by the runs index) a cancellation covers, after `cursor`, by id:
 * each shard's first page after the cursor, merged. Uses the partial index runs_unfinished's rows
 * only through its WHERE; ids give a stable order across shards.
 */
export async function runsToCancel(env: Env, row: CancellationRow, limit: number): Promise<string[]> {
  const pages = await fromEveryShard(env, async (shard) => {
    const result = await shard
      .prepare(
        `SELECT id FROM runs WHERE status IN ('Queued', 'Running') AND function_id = ?1 AND started_at >= ?2 AND started_at <= ?3 AND id > ?4
         ORDER BY id LIMIT ?5`,
      )
      .bind(row.function_id, row.started_after, row.started_before, row.cursor, limit)
      .all<{ id: string }>();
    return result.results.map((r) => r.id);
  });
  return pages.flat().sort().slice(0, limit);
}

/**
 * Statement reading the bulk cancellations a run listed only now must meet: those of its function
 * whose range holds its listed start, made since the run began (while the index did not show it,
 * so no page found it). A small table, read only when a run writes its open row.
 */
export function cancellationsSinceStatement(db: D1Database, functionId: string, listedAt: number, since: number): D1PreparedStatement {
  return db
    .prepare("SELECT id, expression FROM cancellations WHERE function_id = ?1 AND started_after <= ?2 AND started_before >= ?2 AND created_at >= ?3")
    .bind(functionId, listedAt, since);
}

/** Statement recording a page done: the cursor moves on (never back: pages may be worked twice), the count grows. */
export function advanceCancellationStatement(db: D1Database, id: string, cursor: string, cancelled: number, now: number, done: boolean): D1PreparedStatement {
  return db
    .prepare("UPDATE cancellations SET cursor = MAX(cursor, ?2), cancelled = cancelled + ?3, updated_at = ?4, done_at = CASE WHEN ?5 THEN COALESCE(done_at, ?4) ELSE done_at END WHERE id = ?1")
    .bind(id, cursor, cancelled, now, done ? 1 : 0);
}

/** Cancellations not done whose last page is older than `before` (their queue message was lost). */
export async function stalledCancellations(db: D1Database, before: number, limit: number): Promise<string[]> {
  const result = await db.prepare("SELECT id FROM cancellations WHERE done_at IS NULL AND updated_at < ?1 LIMIT ?2").bind(before, limit).all<{ id: string }>();
  return result.results.map((r) => r.id);
}
