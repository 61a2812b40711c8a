import { usage } from "../platform/usage.ts";

// A coordinator's storage (flow/FlowObject.ts): its tables, and its settings and counters as typed
// fields of one `state` table, each kind of control with its own.

/** A throttle's pace: `limit` starts per `period` ms, `burst` of them at once (GCRA). */
export type ThrottleRate = { limit: number; period: number; burst: number };

/** What kind of control a coordinator keeps; the alarm does that kind's work. */
export type FlowKind = "concurrency" | "throttle" | "debounce" | "batchEvents";

/** The state a coordinator keeps, by kind of control. */
export interface FlowState {
  kind: FlowKind;
  /** Rate limits and throttles: GCRA's theoretical arrival time. */
  tat: number;
  /** Throttles: the pace. */
  rate: ThrottleRate;
  /** Concurrency: the slots. */
  limit: number;
  /** Idempotency: when the key's last run started. */
  started_at: number;
  /** Singleton: the last run started under the key, and when. */
  active_run: string;
  active_at: number;
  /** Debounce and batches: the function, when the first event pending came, the period or timeout. */
  function_id: string;
  first_at: number;
  delay: number;
  /** Debounce: hand the run every event, not the last. */
  keep_all: boolean;
  /** Debounce: when the last event pending came, and the most a run waits after the first (its `timeout`). */
  last_at: number;
  timeout: number;
  /** Batches: the most events a run takes. */
  max_size: number;
  /** Budgets: the last resume, and how many resumes there were. */
  budget_reset_at: number;
  budget_round: number;
}

/** How each field is stored as text (the format the first coordinators wrote, kept for the objects that exist). */
const CODECS: { [K in keyof FlowState]: { encode(value: FlowState[K]): string; decode(text: string): FlowState[K] } } = {
  kind: { encode: (value) => value, decode: (text) => text as FlowKind },
  tat: numberCodec(),
  rate: { encode: (value) => JSON.stringify(value), decode: (text) => JSON.parse(text) as ThrottleRate },
  limit: numberCodec(),
  started_at: numberCodec(),
  active_run: { encode: (value) => value, decode: (text) => text },
  active_at: numberCodec(),
  function_id: { encode: (value) => value, decode: (text) => text },
  first_at: numberCodec(),
  delay: numberCodec(),
  keep_all: { encode: (value) => (value ? "1" : "0"), decode: (text) => text === "1" },
  last_at: numberCodec(),
  timeout: numberCodec(),
  max_size: numberCodec(),
  budget_reset_at: numberCodec(),
  budget_round: numberCodec(),
};

function numberCodec(): { encode(value: number): string; decode(text: string): number } {
  return { encode: (value) => String(value), decode: (text) => Number(text) };
}

/** A coordinator's SQLite: its tables, created once, and its typed state. Every write is counted (rows written are the bill). */
export class FlowStore {
  constructor(readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS decisions (run_id TEXT PRIMARY KEY, answer TEXT NOT NULL, at INTEGER NOT NULL)");
    // Concurrency: the runs holding a slot (until their lease expires) and those waiting for one.
    sql.exec("CREATE TABLE IF NOT EXISTS leases (run_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS waiting (run_id TEXT PRIMARY KEY, order_key INTEGER NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS pending (id TEXT NOT NULL, received_at INTEGER NOT NULL, position INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (id, received_at))");
    // An event a debounce or batch released stays known (its body dropped) for a day: the sweep may
    // bring it again after a crash cut its dispatch short, and it must not start a second run.
    if (!sql.exec("SELECT * FROM pending LIMIT 0").columnNames.includes("released_at")) sql.exec("ALTER TABLE pending ADD COLUMN released_at INTEGER");
  }

  get<K extends keyof FlowState>(key: K): FlowState[K] | undefined {
    const text = this.sql.exec<{ v: string }>("SELECT v FROM state WHERE k = ?", key).toArray()[0]?.v;
    return text === undefined ? undefined : CODECS[key].decode(text);
  }

  set<K extends keyof FlowState>(key: K, value: FlowState[K]): void {
    this.write("INSERT INTO state (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", key, CODECS[key].encode(value));
  }

  /** Writes a setting only when it changes: rows written are the bill, and these are asked at every invocation. */
  setIfChanged<K extends keyof FlowState>(key: K, value: FlowState[K]): void {
    const text = CODECS[key].encode(value);
    if (this.sql.exec<{ v: string }>("SELECT v FROM state WHERE k = ?", key).toArray()[0]?.v !== text) this.set(key, value);
  }

  unset(key: keyof FlowState): void {
    this.write("DELETE FROM state WHERE k = ?", key);
  }

  /** Rows of `waiting` or `leases`, or the events of `pending` not released yet. */
  count(table: "waiting" | "leases" | "pending"): number {
    const unreleased = table === "pending" ? " WHERE released_at IS NULL" : "";
    return this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}${unreleased}`).one().n;
  }

  /** The run waiting first: lowest order key, then first come. */
  firstWaiting(): string | undefined {
    return this.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting ORDER BY order_key, rowid LIMIT 1").toArray()[0]?.run_id;
  }

  /** Runs a write and answers the rows it wrote. */
  write(query: string, ...bindings: SqlStorageValue[]): number {
    const { rowsWritten } = this.sql.exec(query, ...bindings);
    usage.doRowsWritten += rowsWritten;
    return rowsWritten;
  }
}
