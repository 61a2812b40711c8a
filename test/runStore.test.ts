// A run's object store under workerd: the rows a run and its steps write, and an object whose
// tables an earlier engine made (a text primary key on `run` and `steps`) working unchanged.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { StepRecord } from "../sdk/driver.ts";
import { usage } from "../worker/platform/usage.ts";
import { RunStore } from "../worker/runs/RunStore.ts";
import { uniqueKey } from "./helpers.ts";

const EARLIER_TABLES = [
  `CREATE TABLE run (id TEXT PRIMARY KEY, function_id TEXT NOT NULL, events TEXT NOT NULL, status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0, attempt_seq INTEGER NOT NULL DEFAULT 0, starts TEXT NOT NULL DEFAULT '[]',
    open INTEGER NOT NULL DEFAULT 0, crashes INTEGER NOT NULL DEFAULT 0, wake_at INTEGER, parent TEXT, finish_by INTEGER,
    output TEXT, error TEXT, started_at INTEGER NOT NULL, ended_at INTEGER)`,
  `CREATE TABLE steps (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    output TEXT, error TEXT, wake_at INTEGER, seq INTEGER, failed_attempts TEXT, request TEXT, started_at INTEGER NOT NULL, ended_at INTEGER)`,
  "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'events', events TEXT NOT NULL)",
];

function step(id: string, status: StepRecord["status"], output?: unknown): StepRecord {
  return { id, name: id, kind: "run", status, attempts: 1, startedAt: 1, ...(output !== undefined ? { output, endedAt: 2 } : {}) };
}

/**
 * Runs a 3-step run through a store over a fresh object's SQLite (its tables as this engine makes
 * them, or as an earlier one did): the rows it wrote, and what a second store reads back.
 */
async function threeStepRun(tables: "current" | "earlier") {
  const stub = env.RUNS.get(env.RUNS.idFromName(uniqueKey("store")));
  return runInDurableObject(stub, (_, state) => {
    const sql = state.storage.sql;
    for (const table of ["run", "steps", "outbox"]) sql.exec(`DROP TABLE IF EXISTS ${table}`);
    if (tables === "earlier") for (const statement of EARLIER_TABLES) sql.exec(statement);
    const store = new RunStore(sql);
    const before = usage.doRowsWritten;
    store.createRun({ id: "r1", functionId: "f", events: [{ id: "e1", name: "a/b", data: {}, ts: 1 }], startedAt: 1, listedAt: 1, indexedOn: null });
    for (const id of ["one", "two", "three"]) store.saveStep(step(id, "completed", { id }));
    const rows = usage.doRowsWritten - before;
    // A step saved again (a retry, a wait resolved) updates its row.
    store.saveStep(step("two", "completed", { id: "two", again: true }));
    store.end("Completed", 3, { output: "done" });
    const reread = new RunStore(sql);
    return { rows, run: reread.run(), steps: [...reread.steps().values()], stepRows: sql.exec("SELECT COUNT(*) AS n FROM steps").one().n };
  });
}

describe("a run's object store", () => {
  it("writes one row for a run and one per step", async () => {
    const { rows, run, steps, stepRows } = await threeStepRun("current");
    expect(rows).toBe(4);
    expect(run).toMatchObject({ id: "r1", status: "Completed", output: "done" });
    expect(steps.map((saved) => [saved.id, saved.output])).toEqual([["one", { id: "one" }], ["two", { id: "two", again: true }], ["three", { id: "three" }]]);
    expect(stepRows).toBe(3);
  });

  it("works unchanged over the tables of an earlier engine (a text primary key, two rows a step)", async () => {
    const { rows, run, steps, stepRows } = await threeStepRun("earlier");
    expect(rows).toBe(8);
    expect(run).toMatchObject({ id: "r1", status: "Completed", output: "done" });
    expect(steps.map((saved) => [saved.id, saved.output])).toEqual([["one", { id: "one" }], ["two", { id: "two", again: true }], ["three", { id: "three" }]]);
    expect(stepRows).toBe(3);
  });
});
