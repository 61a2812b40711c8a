import { isRunIdFor, runIdTime } from "../platform/runId.ts";
import type { RunStatus } from "../platform/types.ts";
import type { Env } from "../platform/env.ts";
import { FUNCTION_IDS_WITH_RUNS } from "./runFunctions.ts";
import { fromEveryShard, groupByHoldingShard, mergeNewestFirst } from "./shards.ts";

/**
 * A row of the D1 runs index: where to find a run; the RunObject holds its truth. Keyed by
 * (function_id, started_at, id), the order its listings read (migration 0020).
 */
export interface RunIndexRow {
  id: string;
  function_id: string;
  event_id: string;
  status: RunStatus;
  started_at: number;
  ended_at: number | null;
  skip_reason: string | null;
  parent_run_id: string | null;
  /** The tick's verdict on an unfinished run that nothing will move on its own (admin/stuck.ts); null otherwise. */
  stuck_reason?: string | null;
  stuck_since?: number | null;
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
  /** Written with its end: its steps, and its estimated cost in dollars at list price (runs/runCost.ts). */
  steps?: number;
  costUsd?: number;
}

/**
 * A run's row already in the index whose id carries no time of its start, found by its id (index
 * runs_id), as `listed`: a row of a run started before migration 0020, which an object of an earlier
 * release may end at another start than the one its row was written at, or one a repoint moved. A run
 * whose id is a ULID of its start has no such row: its key is its id's.
 */
const LISTED_BY_ID = "(SELECT function_id, started_at FROM runs WHERE id = ?1 AND id_ordered IS NULL LIMIT 1) AS listed";

/** Statement recording a started run; never overwrites a row that already learned its end. */
export function insertRunStatement(db: D1Database, run: RunIndexEntry): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO runs (id, function_id, event_id, status, started_at, parent_run_id, skip_reason, ended_at, at_receipt, id_ordered)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE NOT EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND id_ordered IS NULL)
       ON CONFLICT(function_id, started_at, id) DO NOTHING`,
    )
    .bind(run.runId, run.functionId, run.eventId, run.status, run.startedAt, run.parentRunId ?? null, run.skipReason ?? null, run.status === "Skipped" ? run.startedAt : null, atReceipt(run), idOrdered(run));
}

/**
 * Statement recording a run's end (its whole row, if its start was never indexed: a short run's one
 * write), on the row its id already has if that row was found by id (LISTED_BY_ID), never beside it.
 */
export function endRunStatement(db: D1Database, run: RunIndexEntry): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO runs (id, function_id, event_id, status, started_at, parent_run_id, ended_at, at_receipt, steps, cost_usd, id_ordered)
       SELECT ?1, COALESCE(listed.function_id, ?2), ?3, ?4, COALESCE(listed.started_at, ?5), ?6, ?7, ?8, ?9, ?10, ?11
       FROM (SELECT 1) LEFT JOIN ${LISTED_BY_ID} ON true WHERE true
       ON CONFLICT(function_id, started_at, id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at,
         steps = COALESCE(excluded.steps, steps), cost_usd = COALESCE(excluded.cost_usd, cost_usd)`,
    )
    .bind(run.runId, run.functionId, run.eventId, run.status, run.startedAt, run.parentRunId ?? null, run.endedAt ?? null, atReceipt(run), run.steps ?? null, run.costUsd ?? null, idOrdered(run));
}

/**
 * 1 for a run whose id is a ULID of its start (runIdFor's, of an event's receipt or a rerun's
 * start): a lookup by id finds it through the key. NULL for any other, which enters index runs_id.
 */
function idOrdered(run: RunIndexEntry): 1 | null {
  return runIdTime(run.runId) === run.startedAt ? 1 : null;
}

/**
 * The ways to the row of run `runId` by its id alone, each a condition on `runs` and its parameters:
 * for an id that is a ULID of its start, the primary key, a seek per function present
 * (runFunctions.ts); for any row whose id is not, index runs_id. A statement takes one path (SQLite
 * scans the table for a key matched against a compound SELECT).
 */
function runIdPaths(runId: string): { where: string; params: (string | number)[] }[] {
  const time = runIdTime(runId);
  const byKey = { where: `function_id IN (${FUNCTION_IDS_WITH_RUNS}) AND started_at = ?2 AND id = ?1 AND id_ordered = 1`, params: [runId, time!] };
  const byIndex = { where: "id = ?1 AND id_ordered IS NULL", params: [runId] };
  return time === null ? [byIndex] : [byKey, byIndex];
}

/**
 * 1 for a run started at its event's receipt (its id derived from the event and that time, and its
 * row's start that time): runsOfEvent finds it through the event, so it needs no entry in the index by
 * event id. 0 for any other (a re-run, a batch, a debounce, an invoke, a cron), which does.
 */
function atReceipt(run: RunIndexEntry): 0 | 1 {
  return isRunIdFor(run.runId, run.functionId, run.eventId, run.startedAt) ? 1 : 0;
}

/**
 * The steps the runs of `functionId` started since `since` took, as their ends told the index (a
 * function's `budget.steps`; a run not over yet counts once it ends).
 */
export async function stepsSince(env: Env, functionId: string, since: number): Promise<number> {
  // Uses the primary key; on every shard.
  const counts = await fromEveryShard(env, async (shard) => [
    (await shard.prepare("SELECT COALESCE(SUM(steps), 0) AS n FROM runs WHERE function_id = ?1 AND started_at >= ?2").bind(functionId, since).first<{ n: number }>())?.n ?? 0,
  ]);
  return counts.flat().reduce((a, b) => a + b, 0);
}

/**
 * Dollars at list price the runs started since `since` cost, as their ends told the index (the
 * account's daily budget). Reads every run of the window, function by function, then each row.
 */
export async function spendSince(env: Env, since: number): Promise<number> {
  // Uses the primary key: one seek per function present (runFunctions.ts).
  const sums = await fromEveryShard(env, async (shard) => [
    (await shard.prepare(`SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM runs WHERE function_id IN (${FUNCTION_IDS_WITH_RUNS}) AND started_at >= ?1`).bind(since).first<{ usd: number }>())?.usd ?? 0,
  ]);
  return sums.flat().reduce((a, b) => a + b, 0);
}

/** A run's row of the runs index, read from the shards its id may be on (one, with DB alone). */
export async function findRun(env: Env, runId: string): Promise<RunIndexRow | null> {
  const rows = await Promise.all(
    [...(await groupByHoldingShard(env, [runId], (id) => id)).keys()].map(
      async (shard) => {
        // One statement, each SELECT of the compound on its own path; the first path's parameters are
        // every path's (?1 the id, ?2 its time).
        const paths = runIdPaths(runId);
        const params = paths[0]!.params;
        return (await shard.prepare(paths.map(({ where }) => `SELECT * FROM runs WHERE ${where}`).join(" UNION ALL ")).bind(...params).all<RunIndexRow>()).results;
      },
    ),
  );
  return rows.flat()[0] ?? null;
}

/** The runs that `runId` started with step.invoke, oldest first (from every shard). */
export async function childrenOf(env: Env, runId: string): Promise<RunIndexRow[]> {
  // Uses index runs_parent.
  const pages = await fromEveryShard(env, async (shard) => (await shard.prepare("SELECT * FROM runs WHERE parent_run_id = ?1").bind(runId).all<RunIndexRow>()).results);
  return oldestFirst(pages.flat());
}

/**
 * The runs of the events with this id received at `receivedAts` (an id sent again after the dedup
 * window names several events), oldest first, from every shard: a run's row is on its own id's shard.
 */
export async function runsOfEvent(env: Env, eventId: string, receivedAts: number[]): Promise<RunIndexRow[]> {
  // Those started at an event's receipt through the primary key, a seek per function
  // present and receipt (runFunctions.ts); the others through index runs_event, which holds only them.
  const pages = await fromEveryShard(
    env,
    async (shard) =>
      (
        await shard
          .prepare(
            `SELECT * FROM runs WHERE function_id IN (${FUNCTION_IDS_WITH_RUNS}) AND started_at IN (SELECT value FROM json_each(?2)) AND event_id = ?1
             UNION
             SELECT * FROM runs WHERE event_id = ?1 AND at_receipt IS NOT 1`,
          )
          .bind(eventId, JSON.stringify(receivedAts))
          .all<RunIndexRow>()
      ).results,
  );
  return oldestFirst(pages.flat());
}

function oldestFirst(rows: RunIndexRow[]): RunIndexRow[] {
  return rows.sort((a, b) => a.started_at - b.started_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
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

/**
 * Statement noting that an unfinished run's object was asked at `at`, with the tick's verdict: stuck
 * (why, since when) or not (null). One write either way: the verdict rides on the check's own update.
 */
export function markCheckedStatement(db: D1Database, row: RunKey, at: number, stuck: { reason: string; since: number } | null = null): D1PreparedStatement {
  return db
    .prepare("UPDATE runs SET checked_at = ?1, stuck_reason = ?2, stuck_since = ?3 WHERE function_id = ?4 AND started_at = ?5 AND id = ?6")
    .bind(at, stuck?.reason ?? null, stuck?.since ?? null, row.function_id, row.started_at, row.id);
}

/** What names a row of the runs index. */
export type RunKey = Pick<RunIndexRow, "function_id" | "started_at" | "id">;

/**
 * Statement writing a run's end on the row `row` names (the tick's repair of an end the index missed):
 * an update of that row only. Should the row have moved since it was read (a repoint), it changes
 * nothing, and the run's object writes its end where its row is now.
 */
export function recordEndStatement(db: D1Database, row: RunKey, status: RunStatus, endedAt: number): D1PreparedStatement {
  return db.prepare("UPDATE runs SET status = ?1, ended_at = ?2 WHERE function_id = ?3 AND started_at = ?4 AND id = ?5").bind(status, endedAt, row.function_id, row.started_at, row.id);
}

/**
 * Statements clearing a run's stuck verdict after an operator repaired it and, when it was re-pointed,
 * moving its row to its new function. The run's object may have written its end under the new
 * function first: then that row stays and the old one goes.
 */
export function clearStuckStatements(db: D1Database, runId: string, functionId?: string): D1PreparedStatement[] {
  return runIdPaths(runId).flatMap(({ where, params }) => {
    const clear = db.prepare(`UPDATE runs SET stuck_reason = NULL, stuck_since = NULL WHERE ${where}`).bind(...params);
    if (functionId === undefined) return [clear];
    // The new function's id is the last parameter, after the path's own.
    const newFunction = `?${params.length + 1}`;
    return [
      clear,
      db.prepare(`UPDATE OR IGNORE runs SET function_id = ${newFunction} WHERE function_id != ${newFunction} AND ${where}`).bind(...params, functionId),
      db.prepare(`DELETE FROM runs WHERE function_id != ${newFunction} AND ${where}`).bind(...params, functionId),
    ];
  });
}

/** Unfinished runs the tick found stuck, counted by reason (the health check). Reads the unfinished runs only (index runs_unfinished), on every shard. */
export async function stuckCounts(env: Env): Promise<Record<string, number>> {
  const pages = await fromEveryShard(
    env,
    async (shard) =>
      (
        await shard
          .prepare("SELECT stuck_reason AS reason, COUNT(*) AS n FROM runs WHERE status IN ('Queued', 'Running') AND stuck_reason IS NOT NULL GROUP BY stuck_reason")
          .all<{ reason: string; n: number }>()
      ).results,
  );
  const counts: Record<string, number> = {};
  for (const row of pages.flat()) counts[row.reason] = (counts[row.reason] ?? 0) + row.n;
  return counts;
}

/** Which runs a listing shows: all of them, or those of one function, statuses, start window. */
export interface RunFilter {
  functionId?: string;
  statuses?: RunStatus[];
  /** Epoch ms, inclusive. */
  startedAfter?: number;
  /** Epoch ms, exclusive. */
  startedBefore?: number;
  /** Only unfinished runs the tick found stuck: for this reason, or ("any") for any. */
  stuck?: string;
}

/** Where a page of a newest-first listing ends: the last row's sort key. */
export interface PageCursor {
  at: number;
  id: string;
}

/**
 * A page of the runs index, newest first, after `cursor` (the previous page's `next`); `next` is
 * null on the last page. A page costs its own rows and the rows its filters pass over, whatever its
 * depth: each shard seeks the primary key to the cursor, for the one function asked or
 * for each function it holds runs of (runFunctions.ts), and answers each one's first page; the pages
 * merge by (start, id), which no two runs share. Without a function, a page reads up to a page per
 * function, the shard's function ids first.
 *
 * @example
 * const first = await listRuns(env, { functionId: "hello" }, null, 50);
 * const second = first.next ? await listRuns(env, { functionId: "hello" }, first.next, 50) : null;
 */
export async function listRuns(env: Env, filter: RunFilter, cursor: PageCursor | null, limit: number): Promise<{ rows: RunIndexRow[]; next: PageCursor | null }> {
  const keyOf = (row: RunIndexRow) => ({ at: row.started_at, id: row.id });
  const pages = await fromEveryShard(env, async (shard) => {
    const functionIds = filter.functionId !== undefined ? [filter.functionId] : (await shard.prepare(FUNCTION_IDS_WITH_RUNS).all<{ id: string }>()).results.map((row) => row.id);
    const statements = chunksOf(functionIds, FUNCTIONS_PER_STATEMENT).map((ids) => firstPagesStatement(shard, ids, filter, cursor, limit + 1));
    if (statements.length <= 1) return statements.length === 0 ? [] : [(await statements[0]!.all<RunIndexRow>()).results];
    return (await shard.batch<RunIndexRow>(statements)).map((result) => result.results);
  });
  return pageOf(mergeNewestFirst(pages.flat(), keyOf, limit + 1), limit, keyOf);
}

/**
 * How many functions' pages one statement asks for: D1's SQLite joins at most 5 SELECTs in a compound
 * one (measured under workerd: 6 fail with "too many terms in compound SELECT"). A shard's statements go
 * in one batch, one round trip.
 */
const FUNCTIONS_PER_STATEMENT = 5;

/** Statement answering the first `size` runs of each of `functionIds` that pass the filter after the cursor, newest first. */
function firstPagesStatement(db: D1Database, functionIds: string[], filter: RunFilter, cursor: PageCursor | null, size: number): D1PreparedStatement {
  const params: (string | number)[] = [];
  const bind = (value: string | number) => `?${params.push(value)}`;
  const conditions = pageConditions("runs", filter, cursor, bind);
  const pageSize = bind(size);
  // Uses the primary key: a seek per function to the cursor, each one's page merged.
  const pages = functionIds.map((id) => `SELECT * FROM (SELECT * FROM runs WHERE runs.function_id = ${bind(id)}${conditions} ORDER BY runs.started_at DESC, runs.id DESC LIMIT ${pageSize})`);
  return db.prepare(`${pages.join(" UNION ALL ")} ORDER BY started_at DESC, id DESC LIMIT ${pageSize}`).bind(...params);
}

function chunksOf<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** The conditions of a listing's filter (but its function) and cursor on `table`'s columns, each after " AND ". */
function pageConditions(table: string, filter: RunFilter, cursor: PageCursor | null, bind: (value: string | number) => string): string {
  const where: string[] = [];
  if (filter.statuses?.length) where.push(`${table}.status IN (${filter.statuses.map(bind).join(", ")})`);
  if (filter.startedAfter !== undefined) where.push(`${table}.started_at >= ${bind(filter.startedAfter)}`);
  if (filter.startedBefore !== undefined) where.push(`${table}.started_at < ${bind(filter.startedBefore)}`);
  if (filter.stuck !== undefined) where.push(`${table}.status IN ('Queued', 'Running')`, filter.stuck === "any" ? `${table}.stuck_reason IS NOT NULL` : `${table}.stuck_reason = ${bind(filter.stuck)}`);
  if (cursor) where.push(`(${table}.started_at, ${table}.id) < (${bind(cursor.at)}, ${bind(cursor.id)})`);
  return where.map((condition) => ` AND ${condition}`).join("");
}

/** A function's runs by status since a time, and per hour its runs and failures (the dashboard's counts and chart). */
export interface FunctionStats {
  byStatus: Partial<Record<RunStatus, number>>;
  /** The estimated cost of the runs that ended, in dollars at list price (written with each run's end). */
  costUsd: number;
  hours: { hour: number; runs: number; failures: number }[];
}

/**
 * Every function's runs started since `since`, counted by status and by hour (epoch ms of the hour's
 * start). Reads the runs of that window once, function by function, on every shard.
 *
 * @example
 * const stats = await functionStats(env, Date.now() - 24 * 3_600_000);
 * stats.get("hello")?.byStatus.Failed; // 3
 */
export async function functionStats(env: Env, since: number): Promise<Map<string, FunctionStats>> {
  const pages = await fromEveryShard(
    env,
    async (shard) =>
      (
        await shard
          // Uses the primary key: one seek per function present (runFunctions.ts).
          .prepare(
            `SELECT function_id, status, started_at / 3600000 AS hour, COUNT(*) AS n, COALESCE(SUM(cost_usd), 0) AS usd FROM runs
             WHERE function_id IN (${FUNCTION_IDS_WITH_RUNS}) AND started_at >= ?1 GROUP BY function_id, status, hour`,
          )
          .bind(since)
          .all<{ function_id: string; status: RunStatus; hour: number; n: number; usd: number }>()
      ).results,
  );
  const rows = pages.flat();
  const stats = new Map<string, FunctionStats>();
  for (const row of rows) {
    let entry = stats.get(row.function_id);
    if (!entry) stats.set(row.function_id, (entry = { byStatus: {}, costUsd: 0, hours: [] }));
    entry.byStatus[row.status] = (entry.byStatus[row.status] ?? 0) + row.n;
    entry.costUsd += row.usd;
    const hourStart = row.hour * 3_600_000;
    let hour = entry.hours.find((h) => h.hour === hourStart);
    if (!hour) entry.hours.push((hour = { hour: hourStart, runs: 0, failures: 0 }));
    hour.runs += row.n;
    if (row.status === "Failed") hour.failures += row.n;
  }
  for (const entry of stats.values()) entry.hours.sort((a, b) => a.hour - b.hour);
  return stats;
}

/** The first `limit` rows of a page read with one row more than asked, and the cursor after them. */
export function pageOf<T>(rows: T[], limit: number, keyOf: (row: T) => PageCursor): { rows: T[]; next: PageCursor | null } {
  const page = rows.slice(0, limit);
  return { rows: page, next: rows.length > limit ? keyOf(page.at(-1)!) : null };
}
