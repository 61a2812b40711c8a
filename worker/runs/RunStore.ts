import type { HandlerFailures, StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { InvocationStart } from "../../sdk/replay.ts";
import type { SerializedError } from "../../sdk/types.ts";
import type { RunStatus } from "../platform/types.ts";
import { usage } from "../platform/usage.ts";
import { R2_MARKER } from "../platform/largeValues.ts";
import { RunValues } from "./runValues.ts";
import { withRepair, type RepairEntry } from "./health.ts";
import { addMissingColumns, createTables, toRunRecord, toStepRecord, type RunRow, type StepRow } from "./runTables.ts";

import type { OutboxEntry, RunObserver, RunParent, RunRecord } from "./records.ts";

export type { OutboxEntry, RunObserver, RunParent, RunRecord };

/** The owner of the parts of a run's events, and of an outbox entry's (no step id, hashed, looks like these). */
const EVENTS_OWNER = "run:events";
function outboxOwner(seq: number): string {
  return `outbox:${seq}`;
}

function bundleOwner(seq: number): string {
  return `bundle:${seq}`;
}

/** The owner of the parts of the buffered results a run's end wrote on its own row (`last_steps`). */
const LAST_STEPS_OWNER = "run:last-steps";

/** Longest JSON text stored in one value: at most 1.5 MB of UTF-8, under SQLite's 2 MB per value. */
const PART_CHARS = 500_000;
/** Starts a stored value whose JSON is in `parts` (JSON text never starts with a NUL). */
const PARTS_MARKER = "\u0000parts:";

/**
 * A RunObject's SQLite tables, read once into memory and written through, so an invocation never
 * re-reads what it already holds: `run` (one row), `steps` (one row per step), `outbox` (events
 * that must leave the object, written in the commit that decides to send them), `parts` (values
 * too large for one SQLite value).
 */
export class RunStore {
  private cachedRun: RunRecord | null | undefined;
  private cachedSteps: Map<string, StepRecord> | undefined;
  /** Each stored step's rowid, by step id: what an update of the step names. */
  private readonly stepRowids = new Map<string, number>();
  /**
   * Its tables exist. They are made with the run, not with the object: an object asked about a run
   * it never had (a lookup of an unknown id) writes nothing, and stays nothing.
   */
  private hasTables: boolean;
  /** Step results saved but not written yet (a function's `checkpointing.bufferedSteps`), oldest first. */
  private pending: StepRecord[] = [];
  /** What writes the buffered results once the oldest has waited `maxInterval`. */
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** The number of the next row of `step_bundles` (several step results written at once). */
  private nextBundle = 0;
  /** Step outputs in R2 (a bucket is bound): staged before their rows are written, fetched after they are read. */
  readonly values: RunValues;

  constructor(
    private readonly sql: SqlStorage,
    private readonly observer?: RunObserver,
    bucket?: R2Bucket,
  ) {
    this.values = new RunValues(sql, bucket);
    this.hasTables = this.tablesExist();
    if (this.hasTables) addMissingColumns(this.sql);
  }

  private tablesExist(): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run'").toArray().length > 0;
  }

  private ensureTables(): void {
    if (this.hasTables) return;
    this.hasTables = true;
    createTables(this.sql);
  }

  run(): RunRecord | null {
    if (!this.hasTables) return null;
    if (this.cachedRun === undefined) {
      const row = this.sql.exec<RunRow>("SELECT * FROM run LIMIT 1").toArray()[0];
      this.cachedRun = row ? toRunRecord(row, this.decode("run", row.output), this.decode(EVENTS_OWNER, row.events) as StoredEvent[]) : null;
    }
    return this.cachedRun;
  }

  /**
   * Stores a new run. A run that starts now is stored with its first invocation begun (one row
   * for both); a delayed one waits for `wakeAt`.
   */
  createRun(
    run: { id: string; functionId: string; events: StoredEvent[]; startedAt: number; listedAt: number; indexedOn: number | null; wakeAt?: number; parent?: RunParent; finishBy?: number },
    entries: OutboxEntry[] = [],
  ): void {
    const delayed = run.wakeAt !== undefined;
    const record: RunRecord = {
      ...run,
      status: delayed ? "Queued" : "Running",
      handlerFailures: { count: 0, unitSeq: 0 },
      starts: delayed ? [] : [{ at: run.startedAt, seq: 0 }],
      isOpen: !delayed,
      crashes: 0,
    };
    this.write(
      "INSERT INTO run (id, function_id, events, status, starts, open, wake_at, parent, finish_by, started_at, listed_at, indexed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      record.id,
      record.functionId,
      // A batch's events may pass one value's 2 MB: stored across `parts` rows then.
      this.encode(EVENTS_OWNER, record.events),
      record.status,
      JSON.stringify(record.starts),
      record.isOpen ? 1 : 0,
      record.wakeAt ?? null,
      record.parent ? JSON.stringify(record.parent) : null,
      record.finishBy ?? null,
      record.startedAt,
      record.listedAt,
      indexedColumn(record.indexedOn),
    );
    this.addToOutbox(entries);
    this.cachedRun = record;
  }

  /**
   * Records that an invocation begins, before it runs any step body. One that recovers from a dead
   * invocation goes on from the dead one's start (no start of its own): it settles only what the
   * dead one could have, so it blames only steps the dead one could have been running.
   */
  beginInvocation(start: InvocationStart, recovering: boolean, finishBy: number | undefined): RunRecord {
    const run = this.run()!;
    const starts = recovering ? run.starts : [...run.starts, start];
    const crashes = recovering ? run.crashes + 1 : 0;
    this.write("UPDATE run SET status = 'Running', starts = ?, open = 1, crashes = ?, wake_at = NULL, finish_by = ?", JSON.stringify(starts), crashes, finishBy ?? null);
    const previous = run.status;
    Object.assign(run, { status: "Running", starts, isOpen: true, crashes, wakeAt: undefined, finishBy });
    this.observer?.invocationBegan(run, previous, this.steps().values());
    return run;
  }

  /** Makes the run due at `wakeAt` (a wait or child run was resolved from outside). */
  wakeAt(wakeAt: number): void {
    this.write("UPDATE run SET wake_at = ?", wakeAt);
    this.run()!.wakeAt = wakeAt;
  }

  /** Records that the invocation ended with the run waiting until `wakeAt` (and the shard of the runs index that has its row now, if one has). */
  suspend(wakeAt: number, handlerFailures: HandlerFailures, indexedOn: number | null): void {
    this.write("UPDATE run SET open = 0, crashes = 0, wake_at = ?, attempt = ?, attempt_seq = ?, indexed = ?", wakeAt, handlerFailures.count, handlerFailures.unitSeq, indexedColumn(indexedOn));
    Object.assign(this.run()!, { isOpen: false, crashes: 0, wakeAt, handlerFailures, indexedOn });
  }

  /** Records that shard `shard` of the runs index has the run's row (written while no other write of the run's row was due). */
  markIndexed(shard: number): void {
    this.write("UPDATE run SET indexed = ?", indexedColumn(shard));
    this.run()!.indexedOn = shard;
  }

  /**
   * Records an operator's repair on the run's own row (its timeline shows it), with the function it
   * now runs when the repair re-points it: one write, no row of its own.
   */
  recordRepair(entry: RepairEntry, functionId = this.run()!.functionId): void {
    const run = this.run()!;
    const repairs = withRepair(run.repairs, entry);
    this.write("UPDATE run SET repairs = ?, function_id = ?", JSON.stringify(repairs), functionId);
    Object.assign(run, { repairs, functionId });
  }

  /**
   * Ends the run, with what its end sends (a failure event, a parent's resumption) in the same commit.
   * Buffered results not written yet go on the end's own row (`last_steps`), not a row of their own.
   */
  end(status: RunStatus, endedAt: number, result: { output?: unknown; error?: SerializedError }, entries: OutboxEntry[] = []): void {
    const last = this.takePending();
    this.write(
      "UPDATE run SET status = ?, ended_at = ?, output = ?, error = ?, open = 0, wake_at = NULL, last_steps = ?",
      status,
      endedAt,
      this.encode("run", result.output),
      result.error ? JSON.stringify(result.error) : null,
      last.length > 0 ? this.encode(LAST_STEPS_OWNER, last) : null,
    );
    for (const step of last) this.observer?.stepSaved(step);
    this.addToOutbox(entries);
    Object.assign(this.run()!, { status, endedAt, isOpen: false, wakeAt: undefined, ...result });
    this.observer?.runEnded(this.run()!);
  }

  steps(): Map<string, StepRecord> {
    if (this.cachedSteps) return this.cachedSteps;
    if (!this.hasTables) return (this.cachedSteps = new Map());
    const bundles = this.sql.exec<{ seq: number; steps: string }>("SELECT seq, steps FROM step_bundles ORDER BY seq").toArray();
    this.nextBundle = (bundles.at(-1)?.seq ?? -1) + 1;
    const rows = this.sql.exec<StepRow & { row: number }>("SELECT rowid AS row, * FROM steps ORDER BY started_at, rowid").toArray();
    this.stepRowids.clear();
    for (const row of rows) this.stepRowids.set(row.id, row.row);
    const last = (this.sql.exec<{ last_steps: string | null }>("SELECT last_steps FROM run LIMIT 1").toArray()[0]?.last_steps ?? null) as string | null;
    const bundled = new Map(
      [...bundles.flatMap((bundle) => this.decode(bundleOwner(bundle.seq), bundle.steps) as StepRecord[]), ...((this.decode(LAST_STEPS_OWNER, last) as StepRecord[] | undefined) ?? [])].map((step) => [step.id, step]),
    );
    // A step written on its own after it was bundled (saved again) is its row's version; but a row
    // left unsettled (a failed attempt) by a step that completed into a bundle after it is older:
    // a completed step never goes back.
    const own = rows.map((row) => {
      const inBundle = bundled.get(row.id);
      const isUnsettled = row.status !== "completed" && row.status !== "failed";
      return inBundle?.status === "completed" && isUnsettled ? inBundle : toStepRecord(row, this.decode(row.id, row.output));
    });
    const ownIds = new Set(own.map((step) => step.id));
    const stored = [...[...bundled.values()].filter((step) => !ownIds.has(step.id)), ...own].sort((a, b) => a.startedAt - b.startedAt);
    this.cachedSteps = new Map(stored.map((step) => [step.id, step]));
    return this.cachedSteps;
  }

  /**
   * Saves a settled step's result in memory, to be written with the results after it as one row
   * (a function's `checkpointing.bufferedSteps`): when a result arrives and `maxSteps` already wait,
   * once the oldest has waited `maxIntervalMs`, or with any other write of the run. A full buffer
   * waits for the next result rather than being written at once, so a run whose last result fills it
   * writes them on its end's row. A crash loses what is not written yet (never more than `maxSteps`):
   * those steps run again.
   */
  bufferStep(step: StepRecord, { maxSteps, maxIntervalMs }: { maxSteps: number; maxIntervalMs: number }): void {
    // An output in R2 is named by its step's own row, never by a bundle's.
    if (this.values.isStaged(step.id, step.output)) return this.saveStep(step);
    if (this.pending.length >= maxSteps) this.flush();
    this.steps().set(step.id, step);
    this.pending.push(step);
    this.flushTimer ??= setTimeout(() => this.flush(), maxIntervalMs);
  }

  /** Writes the buffered step results, if any, as one row. */
  flush(): void {
    const steps = this.takePending();
    if (steps.length === 0) return;
    const seq = this.nextBundle++;
    this.write("INSERT INTO step_bundles (seq, steps) VALUES (?, ?)", seq, this.encode(bundleOwner(seq), steps));
    for (const step of steps) this.observer?.stepSaved(step);
  }

  /** The buffered step results not written yet, which the caller writes: none wait after it. */
  private takePending(): StepRecord[] {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const steps = this.pending;
    this.pending = [];
    return steps;
  }

  /** Writes a step and what it sends; the output gate holds every later reply and fetch until both are durable. */
  saveStep(step: StepRecord, entries: OutboxEntry[] = []): void {
    const changes = [
      step.status,
      step.attempts,
      this.encode(step.id, step.output),
      step.error ? JSON.stringify(step.error) : null,
      step.wakeAt ?? null,
      step.seq ?? null,
      step.failedAttempts ? JSON.stringify(step.failedAttempts) : null,
      step.endedAt ?? null,
    ];
    const rowid = (this.steps(), this.stepRowids.get(step.id));
    if (rowid !== undefined) {
      this.write("UPDATE steps SET status = ?, attempts = ?, output = ?, error = ?, wake_at = ?, seq = ?, failed_attempts = ?, ended_at = ? WHERE rowid = ?", ...changes, rowid);
    } else {
      this.ensureTables();
      this.flush();
      const inserted = this.sql.exec<{ row: number }>(
        `INSERT INTO steps (status, attempts, output, error, wake_at, seq, failed_attempts, ended_at, id, name, kind, request, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING rowid AS row`,
        ...changes,
        step.id,
        step.name,
        step.kind,
        step.request ? JSON.stringify(step.request) : null,
        step.startedAt,
      );
      this.stepRowids.set(step.id, inserted.one().row);
      usage.doRowsWritten += inserted.rowsWritten;
    }
    this.addToOutbox(entries);
    this.steps().set(step.id, step);
    this.observer?.stepSaved(step);
  }

  /**
   * The oldest entry waiting to leave the object, if any. The run's trace is sent apart from the
   * others (a collector that is down must hold nothing else back): `"trace"` asks for it alone.
   */
  nextOutboxEntry(which: "entries" | "trace" = "entries"): { seq: number; entry: OutboxEntry } | null {
    if (!this.hasTables) return null;
    const where = which === "trace" ? "kind = 'trace'" : "kind != 'trace'";
    const row = this.sql.exec<{ seq: number; kind: string; events: string }>(`SELECT seq, kind, events FROM outbox WHERE ${where} ORDER BY seq LIMIT 1`).toArray()[0];
    if (!row) return null;
    const value = this.decode(outboxOwner(row.seq), row.events);
    // An `events` entry holds the events alone (as the first outbox did); the others, the whole entry.
    const entry = row.kind === "events" ? { kind: "events" as const, events: value as StoredEvent[] } : (value as OutboxEntry);
    return { seq: row.seq, entry };
  }


  /** Drops an outbox entry once its events are accepted. */
  delivered(seq: number): void {
    const row = this.sql.exec<{ events: string }>("SELECT events FROM outbox WHERE seq = ?", seq).toArray()[0];
    if (row?.events.startsWith(PARTS_MARKER)) this.write("DELETE FROM parts WHERE owner = ?", outboxOwner(seq));
    this.write("DELETE FROM outbox WHERE seq = ?", seq);
  }

  /** The steps, with every output in R2 fetched: what an invocation, the run's view and its stream read. */
  async loadedSteps(): Promise<Map<string, StepRecord>> {
    const steps = this.steps();
    await this.values.loadSteps(steps.values());
    return steps;
  }

  /** Deletes the run's objects in R2, if any (its retention is over; its storage goes next). */
  async deleteValues(): Promise<void> {
    const run = this.run();
    if (run) await this.values.deleteRun(run.id, this.hasTables);
  }

  /** Forgets what it read, to read the object's storage again (empty once the run's retention is over and it was deleted). */
  clear(): void {
    this.values.clear();
    this.cachedRun = undefined;
    this.cachedSteps = undefined;
    this.stepRowids.clear();
    this.pending = [];
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.hasTables = this.tablesExist();
  }

  private addToOutbox(entries: OutboxEntry[]): void {
    for (const entry of entries) {
      if (entry.kind === "events" && entry.events.length === 0) continue;
      const text = JSON.stringify(entry.kind === "events" ? entry.events : entry);
      if (text.length <= PART_CHARS) {
        this.write("INSERT INTO outbox (kind, events) VALUES (?, ?)", entry.kind, text);
        continue;
      }
      // Events a step sends may pass one value's 2 MB (3 MiB per send): stored across `parts` rows,
      // named by the entry's place in the outbox.
      this.ensureTables();
      this.flush();
      const { seq } = this.sql.exec<{ seq: number }>("INSERT INTO outbox (kind, events) VALUES (?, '') RETURNING seq", entry.kind).one();
      usage.doRowsWritten++;
      this.write("UPDATE outbox SET events = ? WHERE seq = ?", this.encode(outboxOwner(seq), JSON.parse(text)), seq);
    }
  }

  /**
   * A value as stored: its JSON, or, past PART_CHARS, a marker whose JSON lies in `parts` rows
   * (SQLite in a Durable Object holds at most 2 MB in one value; step outputs may reach 4 MiB).
   */
  private encode(owner: string, value: unknown): string | null {
    if (value === undefined) return null;
    // An R2 reference or the JSON text made while staging it (a bucket is bound), else the JSON now.
    const text = this.values.takeStaged(owner, value) ?? JSON.stringify(value);
    if (text.length <= PART_CHARS) return text;
    this.sql.exec("CREATE TABLE IF NOT EXISTS parts (owner TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (owner, seq)) WITHOUT ROWID");
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
    if (stored.startsWith(R2_MARKER)) return this.values.placeholder(stored);
    if (!stored.startsWith(PARTS_MARKER)) return JSON.parse(stored);
    const parts = this.sql.exec<{ text: string }>("SELECT text FROM parts WHERE owner = ? ORDER BY seq", owner).toArray();
    return JSON.parse(parts.map((part) => part.text).join(""));
  }

  private write(query: string, ...bindings: SqlStorageValue[]): void {
    this.ensureTables();
    // Buffered step results go first: nothing the run writes after them may be durable without them.
    this.flush();
    usage.doRowsWritten += this.sql.exec(query, ...bindings).rowsWritten;
  }
}

/** The run table's `indexed` column: 0 while the run is not in the runs index, else 1 + the shard its row is on. */
function indexedColumn(indexedOn: number | null): number {
  return indexedOn === null ? 0 : indexedOn + 1;
}
