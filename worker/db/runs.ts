import type { RunStatus } from "../messages.ts";

/** A row of the D1 runs index: where to find a run; the RunObject holds its truth. */
export interface RunIndexRow {
  id: string;
  function_id: string;
  event_id: string;
  status: RunStatus;
  started_at: number;
  ended_at: number | null;
  skip_reason: string | null;
}

export interface RunIndexEntry {
  runId: string;
  functionId: string;
  eventId: string;
  status: RunStatus;
  startedAt: number;
  endedAt?: number;
  /** The run that started this one with step.invoke. */
  parentRunId?: string;
  /** Why flow control skipped it (status Skipped). */
  skipReason?: string;
}

/** Statement recording a started run; never overwrites a row that already learned its end. */
export function insertRunStatement(db: D1Database, run: RunIndexEntry): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO runs (id, function_id, event_id, status, started_at, parent_run_id, skip_reason, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
       ON CONFLICT(id) DO NOTHING`,
    )
    .bind(run.runId, run.functionId, run.eventId, run.status, run.startedAt, run.parentRunId ?? null, run.skipReason ?? null, run.status === "Skipped" ? run.startedAt : null);
}

/** Statement recording a run's end (inserting the row if its start has not been indexed yet). */
export function endRunStatement(db: D1Database, run: RunIndexEntry): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO runs (id, function_id, event_id, status, started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
       ON CONFLICT(id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at`,
    )
    .bind(run.runId, run.functionId, run.eventId, run.status, run.startedAt, run.endedAt ?? null);
}

export async function findRun(db: D1Database, runId: string): Promise<RunIndexRow | null> {
  const result = await db.prepare("SELECT * FROM runs WHERE id = ?1").bind(runId).all<RunIndexRow>();
  return result.results[0] ?? null;
}

/** The runs that `runId` started with step.invoke, oldest first. */
export async function childrenOf(db: D1Database, runId: string): Promise<RunIndexRow[]> {
  // Uses index runs_parent.
  const result = await db.prepare("SELECT * FROM runs WHERE parent_run_id = ?1 ORDER BY started_at, id").bind(runId).all<RunIndexRow>();
  return result.results;
}

export async function runsOfEvent(db: D1Database, eventId: string): Promise<RunIndexRow[]> {
  // Uses index runs_event.
  const result = await db.prepare("SELECT * FROM runs WHERE event_id = ?1 ORDER BY started_at, id").bind(eventId).all<RunIndexRow>();
  return result.results;
}

/** Unfinished runs indexed before `before`, least recently checked first. */
export async function unfinishedRuns(db: D1Database, before: number, limit: number): Promise<RunIndexRow[]> {
  // Uses index runs_unfinished.
  const result = await db
    .prepare("SELECT * FROM runs WHERE status IN ('Queued', 'Running') AND started_at < ?1 ORDER BY checked_at LIMIT ?2")
    .bind(before, limit)
    .all<RunIndexRow>();
  return result.results;
}

/** Statement noting that an unfinished run's object was asked at `at`. */
export function markCheckedStatement(db: D1Database, runId: string, at: number): D1PreparedStatement {
  return db.prepare("UPDATE runs SET checked_at = ?1 WHERE id = ?2").bind(at, runId);
}

/**
 * Statement deleting up to `limit` index rows of runs that ended before `before`, oldest first
 * (retention). Unfinished runs have no end and are never deleted here.
 *
 * @example
 * await env.DB.batch([deleteEndedRunsStatement(env.DB, Date.now() - 30 * 86_400_000, 500)]);
 */
export function deleteEndedRunsStatement(db: D1Database, before: number, limit: number): D1PreparedStatement {
  // Uses index runs_ended.
  return db.prepare("DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE ended_at < ?1 ORDER BY ended_at LIMIT ?2)").bind(before, limit);
}
