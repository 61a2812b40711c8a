import type { FailedAttempt, StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { InvocationStart } from "../../sdk/replay.ts";
import type { SerializedError } from "../../sdk/types.ts";
import type { StepRequest } from "../../sdk/wait.ts";
import type { RunStatus } from "../platform/types.ts";
import type { RepairEntry } from "./health.ts";
import type { RunParent, RunRecord } from "./records.ts";

// A RunObject's SQLite tables as RunStore finds them: how they are made (with the run, not the
// object), the columns added to them since the first engine, and their rows read as records.
// RunStore owns what is written to them.

export type RunRow = {
  id: string;
  function_id: string;
  events: string;
  status: RunStatus;
  attempt: number;
  attempt_seq: number;
  starts: string;
  open: number;
  crashes: number;
  wake_at: number | null;
  parent: string | null;
  finish_by: number | null;
  output: string | null;
  error: string | null;
  started_at: number;
  listed_at: number | null;
  indexed: number;
  ended_at: number | null;
  repairs: string | null;
};

export type StepRow = {
  id: string;
  name: string;
  kind: StepRecord["kind"];
  status: StepRecord["status"];
  attempts: number;
  output: string | null;
  error: string | null;
  wake_at: number | null;
  seq: number | null;
  failed_attempts: string | null;
  request: string | null;
  started_at: number;
  ended_at: number | null;
};

/** Columns added after the first engine, for objects whose tables predate them. */
const ADDED_COLUMNS: Record<string, Record<string, string>> = {
  run: {
    attempt_seq: "INTEGER NOT NULL DEFAULT 0",
    starts: "TEXT NOT NULL DEFAULT '[]'",
    open: "INTEGER NOT NULL DEFAULT 0",
    crashes: "INTEGER NOT NULL DEFAULT 0",
    wake_at: "INTEGER",
    parent: "TEXT",
    finish_by: "INTEGER",
    listed_at: "INTEGER",
    indexed: "INTEGER NOT NULL DEFAULT 0",
    repairs: "TEXT",
    last_steps: "TEXT",
  },
  steps: { seq: "INTEGER", failed_attempts: "TEXT", request: "TEXT" },
  outbox: { kind: "TEXT NOT NULL DEFAULT 'events'" },
};

/** Makes the run's tables (a run is being stored in an object that had none). */
export function createTables(sql: SqlStorage): void {
  // No primary key and no index: a row written is one row billed, where a text key costs a second
  // row in its index (objects made before keep theirs; every statement here works on both). The
  // run's table holds one row; a step is found by its id in memory (`stepRowids`), by rowid on disk.
  sql.exec(`CREATE TABLE IF NOT EXISTS run (
      id TEXT NOT NULL, function_id TEXT NOT NULL, events TEXT NOT NULL, status TEXT NOT NULL,
      attempt INTEGER NOT NULL DEFAULT 0, attempt_seq INTEGER NOT NULL DEFAULT 0, starts TEXT NOT NULL DEFAULT '[]',
      open INTEGER NOT NULL DEFAULT 0, crashes INTEGER NOT NULL DEFAULT 0, wake_at INTEGER, parent TEXT, finish_by INTEGER,
      output TEXT, error TEXT, started_at INTEGER NOT NULL, listed_at INTEGER, indexed INTEGER NOT NULL DEFAULT 0, ended_at INTEGER, repairs TEXT,
      last_steps TEXT)`);
  sql.exec(`CREATE TABLE IF NOT EXISTS steps (
      id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
      output TEXT, error TEXT, wake_at INTEGER, seq INTEGER, failed_attempts TEXT, request TEXT, started_at INTEGER NOT NULL, ended_at INTEGER)`);
  sql.exec("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'events', events TEXT NOT NULL)");
  createBundles(sql);
}

/** Step results written several at once (buffered checkpoints): a row each, its steps in order. */
function createBundles(sql: SqlStorage): void {
  sql.exec("CREATE TABLE IF NOT EXISTS step_bundles (seq INTEGER PRIMARY KEY, steps TEXT NOT NULL)");
}

/** An object whose tables an earlier engine made gets the columns added since. */
export function addMissingColumns(sql: SqlStorage): void {
  createBundles(sql);
  for (const [table, columns] of Object.entries(ADDED_COLUMNS)) {
    const present = new Set(sql.exec(`SELECT * FROM ${table} LIMIT 0`).columnNames);
    for (const [column, type] of Object.entries(columns)) {
      if (!present.has(column)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
  }
}

/** The run's row as its record, with its output and events decoded by the store (they may lie in `parts` or R2). */
export function toRunRecord(row: RunRow, output: unknown, events: StoredEvent[]): RunRecord {
  return {
    id: row.id,
    functionId: row.function_id,
    events,
    status: row.status,
    handlerFailures: { count: row.attempt, unitSeq: row.attempt_seq },
    starts: JSON.parse(row.starts) as InvocationStart[],
    isOpen: row.open === 1,
    crashes: row.crashes,
    ...(row.wake_at !== null ? { wakeAt: row.wake_at } : {}),
    ...(row.parent !== null ? { parent: JSON.parse(row.parent) as RunParent } : {}),
    ...(row.finish_by !== null ? { finishBy: row.finish_by } : {}),
    ...(output !== undefined ? { output } : {}),
    ...(row.error !== null ? { error: JSON.parse(row.error) as SerializedError } : {}),
    startedAt: row.started_at,
    listedAt: row.listed_at ?? row.started_at,
    // Column `indexed`: 0 while unlisted, else 1 + the shard. An object made before it wrote its own
    // row was indexed by whoever started it, on DB.
    indexedOn: row.indexed > 0 ? row.indexed - 1 : row.listed_at === null ? 0 : null,
    ...(row.ended_at !== null ? { endedAt: row.ended_at } : {}),
    ...(row.repairs ? { repairs: JSON.parse(row.repairs) as RepairEntry[] } : {}),
  };
}

/** A step's row as its record, with its output decoded by the store. */
export function toStepRecord(row: StepRow, output: unknown): StepRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    status: row.status,
    attempts: row.attempts,
    ...(output !== undefined ? { output } : {}),
    ...(row.error !== null ? { error: JSON.parse(row.error) as SerializedError } : {}),
    ...(row.wake_at !== null ? { wakeAt: row.wake_at } : {}),
    ...(row.seq !== null ? { seq: row.seq } : {}),
    ...(row.failed_attempts !== null ? { failedAttempts: JSON.parse(row.failed_attempts) as FailedAttempt[] } : {}),
    ...(row.request !== null ? { request: JSON.parse(row.request) as StepRequest } : {}),
    startedAt: row.started_at,
    ...(row.ended_at !== null ? { endedAt: row.ended_at } : {}),
  };
}
