import type { StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { SerializedError } from "../../sdk/types.ts";
import type { RunStatus } from "../messages.ts";
import { usage } from "../usage.ts";

/** A run's own record, as its RunObject keeps it. */
export interface RunRecord {
  id: string;
  functionId: string;
  events: StoredEvent[];
  status: RunStatus;
  /** Failed attempts of the handler outside steps. */
  attempt: number;
  output?: unknown;
  error?: SerializedError;
  startedAt: number;
  endedAt?: number;
}

type RunRow = {
  id: string;
  function_id: string;
  events: string;
  status: RunStatus;
  attempt: number;
  output: string | null;
  error: string | null;
  started_at: number;
  ended_at: number | null;
};

type StepRow = {
  id: string;
  name: string;
  kind: StepRecord["kind"];
  status: StepRecord["status"];
  attempts: number;
  output: string | null;
  error: string | null;
  wake_at: number | null;
  started_at: number;
  ended_at: number | null;
};

/** Longest JSON text stored in one value: at most 1.5 MB of UTF-8, under SQLite's 2 MB per value. */
const PART_CHARS = 500_000;
/** Starts a stored value whose JSON is in `parts` (JSON text never starts with a NUL). */
const PARTS_MARKER = "\u0000parts:";

/**
 * A RunObject's SQLite tables (`run`: one row; `steps`: one row per step), read once into memory
 * and written through, so an invocation never re-reads what it already holds.
 */
export class RunStore {
  private cachedRun: RunRecord | null | undefined;
  private cachedSteps: Map<string, StepRecord> | undefined;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS run (
      id TEXT PRIMARY KEY, function_id TEXT NOT NULL, events TEXT NOT NULL, status TEXT NOT NULL,
      attempt INTEGER NOT NULL DEFAULT 0, output TEXT, error TEXT, started_at INTEGER NOT NULL, ended_at INTEGER)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS steps (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
      output TEXT, error TEXT, wake_at INTEGER, started_at INTEGER NOT NULL, ended_at INTEGER)`);
  }

  run(): RunRecord | null {
    if (this.cachedRun === undefined) {
      const row = this.sql.exec<RunRow>("SELECT * FROM run LIMIT 1").toArray()[0];
      this.cachedRun = row ? toRunRecord(row, this.decode("run", row.output)) : null;
    }
    return this.cachedRun;
  }

  createRun(run: Omit<RunRecord, "attempt">): void {
    this.write(
      "INSERT INTO run (id, function_id, events, status, attempt, started_at) VALUES (?, ?, ?, ?, 0, ?)",
      run.id,
      run.functionId,
      JSON.stringify(run.events),
      run.status,
      run.startedAt,
    );
    this.cachedRun = { ...run, attempt: 0 };
  }

  setStatus(status: RunStatus): void {
    this.write("UPDATE run SET status = ?", status);
    if (this.cachedRun) this.cachedRun.status = status;
  }

  setAttempt(attempt: number): void {
    this.write("UPDATE run SET attempt = ?", attempt);
    if (this.cachedRun) this.cachedRun.attempt = attempt;
  }

  end(status: RunStatus, endedAt: number, result: { output?: unknown; error?: SerializedError }): void {
    this.write(
      "UPDATE run SET status = ?, ended_at = ?, output = ?, error = ?",
      status,
      endedAt,
      this.encode("run", result.output),
      result.error ? JSON.stringify(result.error) : null,
    );
    if (this.cachedRun) Object.assign(this.cachedRun, { status, endedAt, ...result });
  }

  steps(): Map<string, StepRecord> {
    this.cachedSteps ??= new Map(
      this.sql
        .exec<StepRow>("SELECT * FROM steps ORDER BY started_at, rowid")
        .toArray()
        .map((row) => [row.id, toStepRecord(row, this.decode(row.id, row.output))]),
    );
    return this.cachedSteps;
  }

  /**
   * A value as stored: its JSON, or, past PART_CHARS, a marker whose JSON lies in `parts` rows
   * (SQLite in a Durable Object holds at most 2 MB in one value; step outputs may reach 4 MiB).
   */
  private encode(owner: string, value: unknown): string | null {
    if (value === undefined) return null;
    const text = JSON.stringify(value);
    if (text.length <= PART_CHARS) return text;
    this.sql.exec("CREATE TABLE IF NOT EXISTS parts (owner TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (owner, seq))");
    this.write("DELETE FROM parts WHERE owner = ?", owner);
    let seq = 0;
    for (let start = 0; start < text.length; seq++) {
      let end = Math.min(start + PART_CHARS, text.length);
      // Never split a surrogate pair: a lone half cannot be stored as UTF-8.
      if (end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1]!)) end--;
      this.write("INSERT INTO parts (owner, seq, text) VALUES (?, ?, ?)", owner, seq, text.slice(start, end));
      start = end;
    }
    return `${PARTS_MARKER}${seq}`;
  }

  private decode(owner: string, stored: string | null): unknown {
    if (stored === null) return undefined;
    if (!stored.startsWith(PARTS_MARKER)) return JSON.parse(stored);
    const parts = this.sql.exec<{ text: string }>("SELECT text FROM parts WHERE owner = ? ORDER BY seq", owner).toArray();
    return JSON.parse(parts.map((part) => part.text).join(""));
  }

  private write(query: string, ...bindings: SqlStorageValue[]): void {
    usage.doRowsWritten += this.sql.exec(query, ...bindings).rowsWritten;
  }

  /** Writes a step; the output gate holds every later reply and fetch until it is durable. */
  saveStep(step: StepRecord): void {
    this.write(
      `INSERT INTO steps (id, name, kind, status, attempts, output, error, wake_at, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, output = excluded.output,
         error = excluded.error, wake_at = excluded.wake_at, ended_at = excluded.ended_at`,
      step.id,
      step.name,
      step.kind,
      step.status,
      step.attempts,
      this.encode(step.id, step.output),
      step.error ? JSON.stringify(step.error) : null,
      step.wakeAt ?? null,
      step.startedAt,
      step.endedAt ?? null,
    );
    this.steps().set(step.id, step);
  }
}

function toRunRecord(row: RunRow, output: unknown): RunRecord {
  return {
    id: row.id,
    functionId: row.function_id,
    events: JSON.parse(row.events) as StoredEvent[],
    status: row.status,
    attempt: row.attempt,
    ...(output !== undefined ? { output } : {}),
    ...(row.error !== null ? { error: JSON.parse(row.error) as SerializedError } : {}),
    startedAt: row.started_at,
    ...(row.ended_at !== null ? { endedAt: row.ended_at } : {}),
  };
}

function toStepRecord(row: StepRow, output: unknown): StepRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    status: row.status,
    attempts: row.attempts,
    ...(output !== undefined ? { output } : {}),
    ...(row.error !== null ? { error: JSON.parse(row.error) as SerializedError } : {}),
    ...(row.wake_at !== null ? { wakeAt: row.wake_at } : {}),
    startedAt: row.started_at,
    ...(row.ended_at !== null ? { endedAt: row.ended_at } : {}),
  };
}
