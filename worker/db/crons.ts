/** A row of the D1 `crons` table: one cron trigger of one function, and when it is next due. */
export interface CronRow {
  function_id: string;
  cron: string;
  timezone: string;
  next_at: number;
}

/** Every stored cron trigger (one row per function and trigger: a few thousand at most). */
export async function allCrons(db: D1Database): Promise<CronRow[]> {
  return (await db.prepare("SELECT * FROM crons").all<CronRow>()).results;
}

/** Statement storing a cron trigger that is new (or whose next time is set anew). */
export function upsertCronStatement(db: D1Database, row: CronRow): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO crons (function_id, cron, timezone, next_at) VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT(function_id, cron) DO UPDATE SET timezone = excluded.timezone, next_at = excluded.next_at`,
    )
    .bind(row.function_id, row.cron, row.timezone, row.next_at);
}

/** Statement removing a cron trigger no registered function has any more. */
export function deleteCronStatement(db: D1Database, functionId: string, cron: string): D1PreparedStatement {
  return db.prepare("DELETE FROM crons WHERE function_id = ?1 AND cron = ?2").bind(functionId, cron);
}

/**
 * Statement moving a cron trigger on to its next time, only if it still stands at `dueAt`: of two
 * ticks that started the same schedule, one moves it.
 */
export function advanceCronStatement(db: D1Database, functionId: string, cron: string, dueAt: number, nextAt: number): D1PreparedStatement {
  return db.prepare("UPDATE crons SET next_at = ?4 WHERE function_id = ?1 AND cron = ?2 AND next_at = ?3").bind(functionId, cron, dueAt, nextAt);
}
