// The runs index without an index of every run by start (migration 0018), keyed by (function, start,
// id) (migration 0020): what reads runs across functions reads them function by function through its
// key. Listings of all runs, an event's runs, a run by its id alone, retention and a repoint, over
// several functions, and what an ended run's row costs.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { deleteRunKeysStatement, endedRunKeys } from "../worker/db/endedRuns.ts";
import { clearStuckStatements, endRunStatement, findRun, insertRunStatement, functionStats, listRuns, runsOfEvent, spendSince, type PageCursor, type RunFilter, type RunIndexRow } from "../worker/db/runs.ts";
import type { Env } from "../worker/platform/env.ts";
import { runIdFor } from "../worker/platform/runId.ts";
import { pruneExpired, PRUNE_LIMIT } from "../worker/schedule/tick.ts";
import { uniqueKey } from "./helpers.ts";

const workerEnv = env as unknown as Env;
const DAY = 86_400_000;

interface Row {
  id: string;
  functionId: string;
  eventId?: string;
  status: string;
  startedAt: number;
  endedAt?: number | null;
  atReceipt?: 0 | 1;
  /** 1 for an id that is a ULID of its start (runIdFor's), found by id through the key. */
  idOrdered?: 1;
}

/** Writes rows of the runs index as they are, with no end unless given (the tick's retention and repair leave those alone). */
async function indexRows(rows: Row[]): Promise<void> {
  const statement = env.DB.prepare("INSERT INTO runs (id, function_id, event_id, status, started_at, ended_at, at_receipt, id_ordered) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  for (let i = 0; i < rows.length; i += 100) {
    await env.DB.batch(rows.slice(i, i + 100).map((row) => statement.bind(row.id, row.functionId, row.eventId ?? `${row.id}-event`, row.status, row.startedAt, row.endedAt ?? null, row.atReceipt ?? 0, row.idOrdered ?? null)));
  }
}

/** A start time no other test's rows share: a random minute of 2012 (rows of an earlier run stay out of the window). */
function quietWindowStart(): number {
  return Date.UTC(2012, 0, 1) + Math.floor(Math.random() * 500_000) * 60_000;
}

/** Every row of a listing, read `pageSize` at a time by cursor, and how many pages it took. */
async function listAll(filter: RunFilter, pageSize: number, on: Env = workerEnv): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: PageCursor | null = null;
  let pages = 0;
  do {
    const page: { rows: RunIndexRow[]; next: PageCursor | null } = await listRuns(on, filter, cursor, pageSize);
    expect(page.rows.length).toBeLessThanOrEqual(pageSize);
    ids.push(...page.rows.map((row) => row.id));
    cursor = page.next;
    pages++;
  } while (cursor);
  return { ids, pages };
}

/** Newest first by (start, id), as a listing orders. */
function newestFirst(rows: Row[]): string[] {
  return [...rows].sort((a, b) => b.startedAt - a.startedAt || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0)).map((row) => row.id);
}

/**
 * Runs of seven functions (more than a statement's five: worker/db/runs.ts), ten each, functions starting at the
 * same millisecond at times (the id breaks the tie).
 */
function runsOfSevenFunctions(key: string, t0: number): Row[] {
  return Array.from({ length: 7 }, (_, f) =>
    Array.from({ length: 10 }, (_, i) => ({
      id: `${key}-f${f}-${String(i).padStart(2, "0")}`,
      functionId: `${key}-f${f}`,
      status: (f + i) % 3 === 0 ? "Failed" : "Completed",
      startedAt: t0 + i * 1000 + (f % 2) * 500,
    })),
  ).flat();
}

type Recorded = { sql: string; params: unknown[]; rowsRead: number };

/** An env whose DB records the SQL and bindings of every statement it runs, and the rows D1 says each read. */
function meteredEnv(): { env: Env; statements: Recorded[] } {
  const statements: Recorded[] = [];
  const real = new WeakMap<object, { sql: string; params: unknown[]; statement: D1PreparedStatement }>();
  const wrap = (sql: string, params: unknown[], statement: D1PreparedStatement): D1PreparedStatement => {
    const run = async () => {
      const result = await statement.all();
      statements.push({ sql, params, rowsRead: result.meta.rows_read });
      return result;
    };
    const wrapped = {
      bind: (...values: unknown[]) => wrap(sql, values, statement.bind(...values)),
      all: run,
      run,
      first: async () => (await run()).results[0] ?? null,
    };
    real.set(wrapped, { sql, params, statement });
    return wrapped as unknown as D1PreparedStatement;
  };
  const db = {
    prepare: (sql: string) => wrap(sql, [], env.DB.prepare(sql)),
    batch: async (batch: D1PreparedStatement[]) => {
      const originals = batch.map((statement) => real.get(statement)!);
      const results = await env.DB.batch(originals.map((original) => original.statement));
      results.forEach((result, i) => statements.push({ sql: originals[i]!.sql, params: originals[i]!.params, rowsRead: result.meta.rows_read }));
      return results;
    },
  } as unknown as D1Database;
  return { env: { ...workerEnv, DB: db }, statements };
}

async function functionsPresent(): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(DISTINCT function_id) AS n FROM runs").first<{ n: number }>())!.n;
}

/** The details of SQLite's plan for a statement, as D1 answers EXPLAIN QUERY PLAN. */
async function planOf(sql: string, params: unknown[]): Promise<string[]> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params).all<{ detail: string }>();
  return results.map((row) => row.detail);
}

describe("the runs index is keyed by function and start", () => {
  it("has no index by start: an ended run's row is 1 row written; one whose id carries no time of its start, 3 (its entries in runs_id and runs_event)", async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'").all<{ name: string }>();
    const indexes = results.map((row) => row.name);
    expect(indexes).not.toContain("runs_started");
    expect(indexes).not.toContain("runs_function_started");
    const eventId = uniqueKey("rows-written");
    const startedAt = quietWindowStart();
    const run = { runId: runIdFor("rows-written", eventId, startedAt), functionId: "rows-written", eventId, status: "Completed" as const, startedAt, endedAt: startedAt + 5 };
    expect((await endRunStatement(env.DB, run).run()).meta.rows_written).toBe(1);
    const hexId = { ...run, runId: crypto.randomUUID().replace(/-/g, "") };
    expect((await endRunStatement(env.DB, hexId).run()).meta.rows_written).toBe(3);
    const otherTime = { ...run, runId: runIdFor("rows-written", eventId, 0) };
    expect((await endRunStatement(env.DB, otherTime).run()).meta.rows_written).toBe(3);
    for (const { runId } of [run, hexId, otherTime]) expect(await findRun(workerEnv, runId)).toMatchObject({ id: runId, function_id: "rows-written", started_at: startedAt, status: "Completed" });
  });

  it("lists the runs of several functions a few at a time, newest first, each once, with a status filter and a start window too", async () => {
    const key = uniqueKey("all-functions");
    const t0 = quietWindowStart();
    const rows = runsOfSevenFunctions(key, t0);
    await indexRows(rows);
    const window = { startedAfter: t0, startedBefore: t0 + 60_000 };

    const all = await listAll(window, 3);
    expect(all.ids).toEqual(newestFirst(rows));
    expect(all.pages).toBe(Math.ceil(rows.length / 3));

    const failed = await listAll({ ...window, statuses: ["Failed"] }, 2);
    expect(failed.ids).toEqual(newestFirst(rows.filter((row) => row.status === "Failed")));

    const narrower = { startedAfter: t0 + 3_000, startedBefore: t0 + 7_000 };
    const inside = rows.filter((row) => row.startedAt >= narrower.startedAfter && row.startedAt < narrower.startedBefore);
    expect(inside.length).toBe(7 * 4);
    expect((await listAll(narrower, 5)).ids).toEqual(newestFirst(inside));
    expect((await listAll({ ...narrower, statuses: ["Completed", "Cancelled"] }, 4)).ids).toEqual(newestFirst(inside.filter((row) => row.status === "Completed")));
  });

  it("reads a page per function for a page of all runs, each through the key, never a scan of the runs", async () => {
    const key = uniqueKey("plans");
    const t0 = quietWindowStart();
    // Many runs per function: a scan would read them all, a page a few of each.
    const rows = Array.from({ length: 4 }, (_, f) => Array.from({ length: 150 }, (_, i) => ({ id: `${key}-f${f}-${String(i).padStart(3, "0")}`, functionId: `${key}-f${f}`, status: i % 5 === 0 ? "Failed" : "Completed", startedAt: t0 + i * 1000 + f }))).flat();
    await indexRows(rows);
    const functionsBefore = await functionsPresent();
    const metered = meteredEnv();
    const window = { startedAfter: t0, startedBefore: t0 + 150_000 };
    const page = await listRuns(metered.env, window, null, 5);
    expect(page.rows.map((row) => row.id)).toEqual(newestFirst(rows).slice(0, 5));
    const firstPage = [...metered.statements];
    await listRuns(metered.env, { ...window, statuses: ["Failed"] }, page.next, 5);
    await runsOfEvent(metered.env, `${key}-event`, [t0]);
    await spendSince(metered.env, t0);
    await functionStats(metered.env, t0);
    await endedRunKeys(metered.env.DB, 0, 10);
    await deleteRunKeysStatement(metered.env.DB, [{ function_id: `${key}-f0`, started_at: t0 + 1, id: `${key}-none` }]).run();

    // The first page: the function ids (a seek each, a few rows read a function), then, 5 functions a
    // statement, each one's first 6 runs (the page and one more) in the window; other tests' functions meet
    // none in it. A scan would have read every run.
    // Other tests may add functions meanwhile: the count before and after the page bound the one it met.
    const functionsAfter = await functionsPresent();
    const [functionIds, ...firstPages] = firstPage;
    expect(firstPages.length).toBeGreaterThanOrEqual(Math.ceil(functionsBefore / 5));
    expect(firstPages.length).toBeLessThanOrEqual(Math.ceil(functionsAfter / 5));
    expect(functionIds!.rowsRead).toBeLessThanOrEqual(3 * functionsAfter);
    const pagesRead = firstPages.reduce((sum, statement) => sum + statement.rowsRead, 0);
    expect(pagesRead).toBeGreaterThanOrEqual(4 * 6);
    expect(pagesRead).toBeLessThanOrEqual(4 * 6 * 2 + 3 * functionsAfter);
    for (const { sql, params } of metered.statements) {
      const plan = await planOf(sql, params);
      expect(plan.filter((detail) => /^SCAN runs\b/.test(detail)), sql).toEqual([]);
      expect(plan.some((detail) => detail.includes("USING PRIMARY KEY")), sql).toBe(true);
    }
    // Retention deletes the rows it found by their whole key, a seek each.
    const deleteByKeys = metered.statements.at(-1)!;
    expect(deleteByKeys.sql).toMatch(/^DELETE FROM runs/);
    expect(await planOf(deleteByKeys.sql, deleteByKeys.params)).toContainEqual(expect.stringContaining("USING PRIMARY KEY (function_id=? AND started_at=? AND id=?)"));
  });

  it("finds an event's runs across functions: those started at its receipt and the others", async () => {
    const eventId = uniqueKey("event-runs");
    const receivedAt = quietWindowStart();
    const atReceipt = ["fa", "fb", "fc"].map((fn) => ({ id: runIdFor(`${eventId}-${fn}`, eventId, receivedAt), functionId: `${eventId}-${fn}`, eventId, status: "Completed", startedAt: receivedAt, atReceipt: 1 as const }));
    const rerun = { id: `${eventId}-rerun`, functionId: `${eventId}-fa`, eventId, status: "Completed", startedAt: receivedAt + 10, atReceipt: 0 as const };
    // Another event's run at the same time, and a run of this one's id at a time it was not received: neither is its.
    const others = [
      { id: `${eventId}-other`, functionId: `${eventId}-fa`, eventId: `${eventId}-other`, status: "Completed", startedAt: receivedAt, atReceipt: 1 as const },
      { id: `${eventId}-elsewhen`, functionId: `${eventId}-fb`, eventId, status: "Completed", startedAt: receivedAt + 1, atReceipt: 1 as const },
    ];
    await indexRows([...atReceipt, rerun, ...others]);
    const found = await runsOfEvent(workerEnv, eventId, [receivedAt]);
    expect(found.map((row) => row.id)).toEqual([...[...atReceipt].sort((a, b) => (a.id < b.id ? -1 : 1)).map((row) => row.id), rerun.id]);
  });

  it("finds a run by its id alone through the key, a seek per function present, never a scan", async () => {
    const key = uniqueKey("by-id");
    const t0 = quietWindowStart();
    // Many runs of a few functions: a scan would read them all.
    const rows = Array.from({ length: 3 }, (_, f) => Array.from({ length: 100 }, (_, i) => ({ id: runIdFor(`${key}-f${f}`, `${key}-${i}`, t0 + i), functionId: `${key}-f${f}`, status: "Completed", startedAt: t0 + i })))
      .flat()
      .map((row) => ({ ...row, idOrdered: 1 as const }));
    await indexRows(rows);
    const wanted = rows[150]!;
    const metered = meteredEnv();
    expect(await findRun(metered.env, wanted.id)).toMatchObject({ id: wanted.id, function_id: wanted.functionId, started_at: wanted.startedAt });
    // A few rows a function present (its id, a seek), however many runs each has: a scan would read them all.
    const rowsRead = metered.statements.reduce((sum, statement) => sum + statement.rowsRead, 0);
    expect(rowsRead).toBeLessThanOrEqual(6 * (await functionsPresent()));
    for (const { sql, params } of metered.statements) expect((await planOf(sql, params)).filter((detail) => /^SCAN runs\b/.test(detail)), sql).toEqual([]);
    expect(await findRun(workerEnv, runIdFor(`${key}-f0`, `${key}-none`, t0))).toBeNull();
  });

  it("moves a re-pointed run's row to its new function, and keeps the end its object wrote there first", async () => {
    const key = uniqueKey("repoint");
    const startedAt = quietWindowStart();
    const running = (n: number) => ({ runId: runIdFor(`${key}-old`, `${key}-${n}`, startedAt), functionId: `${key}-old`, eventId: `${key}-${n}`, status: "Running" as const, startedAt });
    const [moved, endedFirst] = [running(1), running(2)];
    await env.DB.batch([endRunStatement(env.DB, moved), endRunStatement(env.DB, endedFirst)]);
    // The second run's object, re-pointed, ended before the repair's own write: its end is under the new function.
    await endRunStatement(env.DB, { ...endedFirst, functionId: `${key}-new`, status: "Completed", endedAt: startedAt + 9 }).run();
    for (const { runId } of [moved, endedFirst]) await env.DB.batch(clearStuckStatements(env.DB, runId, `${key}-new`));
    const rows = await env.DB.prepare("SELECT id, function_id, status FROM runs WHERE function_id IN (?1, ?2) ORDER BY id").bind(`${key}-old`, `${key}-new`).all();
    expect(rows.results).toEqual(
      [
        { id: moved.runId, function_id: `${key}-new`, status: "Running" },
        { id: endedFirst.runId, function_id: `${key}-new`, status: "Completed" },
      ].sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
  });

  it("writes the start and end of a run whose row was found by its id onto that row, whatever start they name", async () => {
    // A run started before migration 0020: its row was written at its event's receipt; its object, of an earlier
    // release, knows only its own start, a moment later.
    const key = uniqueKey("legacy");
    const receivedAt = quietWindowStart();
    const runId = crypto.randomUUID().replace(/-/g, "");
    await indexRows([{ id: runId, functionId: `${key}-fn`, eventId: `${key}-event`, status: "Running", startedAt: receivedAt }]);
    const known = { runId, functionId: `${key}-fn`, eventId: `${key}-event`, startedAt: receivedAt + 40 };
    await insertRunStatement(env.DB, { ...known, status: "Running" }).run();
    await endRunStatement(env.DB, { ...known, status: "Completed", endedAt: receivedAt + 90, steps: 2 }).run();
    const rows = await env.DB.prepare("SELECT started_at, status, ended_at, steps FROM runs WHERE id = ?1").bind(runId).all();
    expect(rows.results).toEqual([{ started_at: receivedAt, status: "Completed", ended_at: receivedAt + 90, steps: 2 }]);
  });

  it("deletes only runs of every function that ended before the cutoff, in bounded batches", async () => {
    // 20 days old, pruned as if 20 days from now (cutoff 10 days ago): the tick's own prunes, at the real
    // time, leave them alone; other tests' rows are younger than the cutoff.
    const realNow = Date.now();
    const now = realNow + 20 * DAY;
    const key = uniqueKey("retention-functions");
    const functions = [0, 1, 2].map((f) => `${key}-f${f}`);
    // Skipped runs, rows with no object behind them, as these have: a finished run's id would go to its object
    // through the queue, and hundreds of objects asked would hold the tests' queue for seconds.
    const old = functions.flatMap((functionId, f) => Array.from({ length: 200 + f * 50 }, (_, i) => ({ id: `${functionId}-old-${i}`, functionId, status: "Skipped", startedAt: realNow - 21 * DAY + i, endedAt: realNow - 20 * DAY })));
    const kept = functions.flatMap((functionId) => [
      { id: `${functionId}-recent`, functionId, status: "Completed", startedAt: realNow - 6 * DAY, endedAt: realNow - 5 * DAY },
      { id: `${functionId}-unfinished`, functionId, status: "Waiting", startedAt: realNow - 25 * DAY, endedAt: null },
      { id: `${functionId}-ended-late`, functionId, status: "Failed", startedAt: realNow - 25 * DAY, endedAt: realNow - 2 * DAY },
    ]);
    await indexRows([...old, ...kept]);
    expect(old.length).toBeGreaterThan(PRUNE_LIMIT);

    const left = async () => (await env.DB.prepare("SELECT id FROM runs WHERE function_id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(functions)).all<{ id: string }>()).results.map((row) => row.id);
    let prunes = 0;
    for (;;) {
      const { runs } = await pruneExpired(workerEnv, now);
      expect(runs).toBeLessThanOrEqual(PRUNE_LIMIT);
      if (!(await left()).some((id) => id.includes("-old-"))) break;
      prunes++;
      expect(prunes, "prunes before every old run went").toBeLessThan(10);
    }
    expect((await left()).sort()).toEqual(kept.map((row) => row.id).sort());
  });
});
