import { DurableObject } from "cloudflare:workers";
import type { StoredEvent } from "../../sdk/event.ts";
import { gcra } from "../../sdk/flow.ts";
import { instrument } from "../platform/bindings.ts";
import type { Env } from "../platform/env.ts";
import { runObject, startCollectedRun } from "../runs/door.ts";
import { FINAL_STATUSES, type AcceptedEvent } from "../platform/types.ts";
import { usage } from "../platform/usage.ts";

/** How long a decision is remembered, so a redelivered event gets the same answer: past the queue's retries. */
const DECISION_TTL_MS = 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const SINGLETON_PENDING_MS = 60_000;
/** How long a concurrency slot is held without renewal: a running invocation renews it every third of this. */
export const LEASE_MS = 30_000;

/** What a coordinator is asked at dispatch, for one run of its function under its key. */
export type FlowAsk =
  | { kind: "idempotency"; runId: string }
  | { kind: "rateLimit"; runId: string; limit: number; period: number }
  | { kind: "singleton"; runId: string; mode: "skip" | "cancel" };

/** A throttle's pace: `limit` starts per `period` ms, `burst` of them at once (GCRA). */
export type ThrottleRate = { limit: number; period: number; burst: number };

/** A throttle's answer to a run asking to start: go now, or wait to be told (by `estimate` if nothing moves ahead). */
export type StartAnswer = { granted: true } | { granted: false; estimate: number };

/** Its answer: start (at a time), or skip. */
export type FlowAnswer = { start: true; at: number } | { start: false; reason: string };

/** An event handed to a collecting coordinator (debounce, batchEvents), and how to collect it. */
export type CollectAsk =
  | { kind: "debounce"; functionId: string; accepted: AcceptedEvent; position: number; period: number; timeout?: number; keepAll: boolean }
  | { kind: "batchEvents"; functionId: string; accepted: AcceptedEvent; position: number; maxSize: number; timeout: number };

type PendingRow = { id: string; received_at: number; event: string };

/**
 * One flow-control coordinator per (function, option, key value) (DESIGN "Flow control"): only
 * functions that ask for flow control reach one, and no lock is shared beyond that key. Its SQLite
 * holds a rate's state (GCRA), recent decisions (so a redelivered event is answered alike), and the
 * events a debounce or batch is collecting, started as one run on its alarm.
 */
export class FlowObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, instrument(env));
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS decisions (run_id TEXT PRIMARY KEY, answer TEXT NOT NULL, at INTEGER NOT NULL)");
    // Concurrency: the runs holding a slot (until their lease expires) and those waiting for one.
    this.sql.exec("CREATE TABLE IF NOT EXISTS leases (run_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS waiting (run_id TEXT PRIMARY KEY, order_key INTEGER NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS pending (id TEXT NOT NULL, received_at INTEGER NOT NULL, position INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (id, received_at))");
  }

  /** Decides whether (and when) a run starts; the same run asked again gets the same answer. */
  async admit(ask: FlowAsk, now = Date.now()): Promise<FlowAnswer> {
    usage.doRequests++;
    const known = this.sql.exec<{ answer: string }>("SELECT answer FROM decisions WHERE run_id = ?", ask.runId).toArray()[0];
    if (known) return JSON.parse(known.answer) as FlowAnswer;
    // A singleton asks the active run how it stands: no other ask may slip in meanwhile.
    const answer = ask.kind === "singleton" ? await this.ctx.blockConcurrencyWhile(() => this.decideSingleton(ask, now)) : this.decide(ask, now);
    this.write("INSERT INTO decisions (run_id, answer, at) VALUES (?, ?, ?)", ask.runId, JSON.stringify(answer), now);
    this.write("DELETE FROM decisions WHERE at < ?", now - DECISION_TTL_MS);
    return answer;
  }

  /**
   * One active run per key: while the last run started is not over, a new one is skipped (`skip`)
   * or the old one is cancelled (`cancel`). A run admitted but not yet stored counts as active for
   * a minute, the time its dispatch may take.
   */
  private async decideSingleton(ask: Extract<FlowAsk, { kind: "singleton" }>, now: number): Promise<FlowAnswer> {
    const active = this.get("active_run");
    if (active && active !== ask.runId) {
      const stub = runObject(this.env, active);
      const state = await stub.status();
      const isActive = state ? !FINAL_STATUSES.has(state.status) : now - Number(this.get("active_at") ?? 0) < SINGLETON_PENDING_MS;
      if (isActive && ask.mode === "skip") return { start: false, reason: `singleton: run ${active} is still active` };
      if (isActive) await stub.cancelIf({ type: "singleton", run_id: ask.runId });
    }
    this.set("active_run", ask.runId);
    this.set("active_at", String(now));
    return { start: true, at: now };
  }

  private decide(ask: Exclude<FlowAsk, { kind: "singleton" }>, now: number): FlowAnswer {
    switch (ask.kind) {
      case "idempotency": {
        // At most one run per key value per 24 hours.
        const last = Number(this.get("started_at") ?? -Infinity);
        if (now - last < DAY_MS) return { start: false, reason: "idempotency: a run with this key started in the last 24 hours" };
        this.set("started_at", String(now));
        return { start: true, at: now };
      }
      case "rateLimit": {
        const next = gcra({ tat: Number(this.get("tat") ?? 0), now, limit: ask.limit, period: ask.period, burst: ask.limit });
        if (next.startAt > now) return { start: false, reason: `rateLimit: more than ${ask.limit} runs in ${ask.period} ms` };
        this.set("tat", String(next.tat));
        return { start: true, at: now };
      }
    }
  }

  /**
   * Collects an event for a debounce or a batch, and arms the alarm for when the run starts: a
   * debounce `period` after the last event (at most `timeout` after the first), a batch `timeout`
   * after its first event, or at once when it is full.
   */
  async collect(ask: CollectAsk, now = Date.now()): Promise<void> {
    usage.doRequests++;
    const { event, receivedAt } = ask.accepted;
    this.write("INSERT INTO pending (id, received_at, position, event) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", event.id, receivedAt, ask.position, JSON.stringify(event));
    const firstAt = Number(this.get("first_at") ?? now);
    if (!this.get("first_at")) this.set("first_at", String(now));
    this.set("function_id", ask.functionId);
    this.set("kind", ask.kind);
    this.set("delay", String(ask.kind === "debounce" ? ask.period : ask.timeout));
    if (ask.kind === "debounce") {
      this.set("keep_all", ask.keepAll ? "1" : "0");
      const dueAt = Math.min(now + ask.period, ask.timeout === undefined ? Infinity : firstAt + ask.timeout);
      return this.ctx.storage.setAlarm(dueAt);
    }
    this.set("max_size", String(ask.maxSize));
    if (this.pendingCount() >= ask.maxSize) return this.release();
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(firstAt + ask.timeout);
  }

  /**
   * Asks a throttle for `runId`'s start, at its first invocation: granted while the rate allows a
   * start now and no run waits ahead of it; otherwise the run waits, in `orderKey` order (its time
   * of asking, less its priority), and is woken by `slotGranted` when its turn comes. The answer
   * `estimate` is when that would be if no run moves ahead of it: the run asks again then, should
   * its wake-up be lost. Granted once, a run is granted again (a repeated first invocation).
   */
  async acquireStart(runId: string, rate: ThrottleRate, orderKey: number, now = Date.now()): Promise<StartAnswer> {
    usage.doRequests++;
    this.setIfChanged("kind", "throttle");
    this.setIfChanged("rate", JSON.stringify(rate));
    if (this.sql.exec("SELECT 1 FROM decisions WHERE run_id = ?", runId).toArray().length > 0) return { granted: true };
    this.write("INSERT INTO waiting (run_id, order_key) VALUES (?, ?) ON CONFLICT(run_id) DO NOTHING", runId, orderKey);
    const granted = await this.grantStarts(now, runId);
    if (granted) return { granted: true };
    // Its place in the queue, paced as the rate would pace the runs ahead of it.
    const ahead = this.sql.exec<{ n: number }>(
      "SELECT COUNT(*) AS n FROM waiting WHERE (order_key, rowid) < (SELECT order_key, rowid FROM waiting WHERE run_id = ?)",
      runId,
    ).one().n;
    let tat = Number(this.get("tat") ?? 0);
    let estimate = now;
    for (let i = 0; i <= ahead; i++) ({ startAt: estimate, tat } = gcra({ tat, now, ...rate }));
    return { granted: false, estimate };
  }

  /**
   * Grants starts to the runs waiting first while the rate allows one now, tells them (but `asking`,
   * which learns it from the answer), and arms the alarm for the next start; answers whether `asking` was granted.
   */
  private async grantStarts(now: number, asking?: string): Promise<boolean> {
    const rate = JSON.parse(this.get("rate") ?? "null") as ThrottleRate | null;
    if (!rate) return false;
    const granted: string[] = [];
    let tat = Number(this.get("tat") ?? 0);
    for (;;) {
      const first = this.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting ORDER BY order_key, rowid LIMIT 1").toArray()[0];
      if (!first) break;
      const next = gcra({ tat, now, ...rate });
      if (next.startAt > now) {
        await this.ctx.storage.setAlarm(next.startAt);
        break;
      }
      tat = next.tat;
      this.write("INSERT INTO decisions (run_id, answer, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", first.run_id, JSON.stringify({ start: true, at: now }), now);
      this.write("DELETE FROM waiting WHERE run_id = ?", first.run_id);
      granted.push(first.run_id);
    }
    this.set("tat", String(tat));
    this.write("DELETE FROM decisions WHERE at < ?", now - DECISION_TTL_MS);
    // Told after the grants are stored; a run not told asks again at its own alarm.
    await this.tellGranted(granted.filter((id) => id !== asking));
    return asking !== undefined && granted.includes(asking);
  }

  private tellGranted(runIds: string[]): Promise<unknown> {
    const by = this.get("kind") === "concurrency" ? "concurrency" : "throttle";
    return Promise.all(runIds.map((id) => runObject(this.env, id).slotGranted(by).catch(() => undefined)));
  }

  /**
   * Asks for a concurrency slot for an invocation of `runId`: granted (or renewed, for a run that
   * holds one) while fewer than `limit` runs hold one and no run waits ahead of it; otherwise the
   * run waits, in `orderKey` order (its time of asking, less its priority), and is woken by
   * `slotGranted` when a slot is given to it. A lease not renewed within LEASE_MS is given back,
   * so a run whose object died holds no slot for ever.
   */
  async acquire(runId: string, limit: number, orderKey: number, now = Date.now()): Promise<boolean> {
    usage.doRequests++;
    this.setIfChanged("kind", "concurrency");
    this.setIfChanged("limit", String(limit));
    this.reclaimExpired(now);
    const held = this.sql.exec("SELECT 1 FROM leases WHERE run_id = ?", runId).toArray().length > 0;
    const first = this.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting ORDER BY order_key, rowid LIMIT 1").toArray()[0];
    if (held || (this.leaseCount() < limit && (!first || first.run_id === runId))) {
      this.write("INSERT INTO leases (run_id, expires_at) VALUES (?, ?) ON CONFLICT(run_id) DO UPDATE SET expires_at = excluded.expires_at", runId, now + LEASE_MS);
      this.write("DELETE FROM waiting WHERE run_id = ?", runId);
      await this.armConcurrency(now);
      return true;
    }
    this.write("INSERT INTO waiting (run_id, order_key) VALUES (?, ?) ON CONFLICT(run_id) DO NOTHING", runId, orderKey);
    await this.armConcurrency(now);
    return false;
  }

  /** Gives back `runId`'s slot (its invocation ended) and hands free slots to the runs waiting first. */
  async releaseSlot(runId: string, now = Date.now()): Promise<void> {
    usage.doRequests++;
    this.write("DELETE FROM leases WHERE run_id = ?", runId);
    this.write("DELETE FROM waiting WHERE run_id = ?", runId);
    await this.grantWaiting(now);
  }

  override async alarm(): Promise<void> {
    usage.doRequests++;
    const kind = this.get("kind");
    if (kind === "concurrency") return this.grantWaiting(Date.now());
    if (kind === "throttle") return void (await this.grantStarts(Date.now()));
    await this.release();
  }

  private async grantWaiting(now: number): Promise<void> {
    this.reclaimExpired(now);
    const limit = Number(this.get("limit") ?? 1);
    const free = limit - this.leaseCount();
    const granted = free > 0 ? this.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting ORDER BY order_key, rowid LIMIT ?", free).toArray() : [];
    for (const { run_id } of granted) {
      this.write("INSERT INTO leases (run_id, expires_at) VALUES (?, ?) ON CONFLICT(run_id) DO NOTHING", run_id, now + LEASE_MS);
      this.write("DELETE FROM waiting WHERE run_id = ?", run_id);
    }
    await this.armConcurrency(now);
    // The runs are told after the slots are stored; one not told in time asks again at its own alarm.
    await this.tellGranted(granted.map(({ run_id }) => run_id));
  }

  private reclaimExpired(now: number): void {
    this.write("DELETE FROM leases WHERE expires_at <= ?", now);
  }

  private leaseCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM leases").one().n;
  }

  /** The alarm stands at the earliest lease expiry while runs wait, so an expired slot is given on. */
  private async armConcurrency(now: number): Promise<void> {
    const waiting = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM waiting").one().n;
    const earliest = this.sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM leases").one().at;
    if (waiting > 0) await this.ctx.storage.setAlarm(earliest ?? now);
  }

  /**
   * Starts the run of what was collected (a debounce's last event, or all of them; a batch's first
   * `maxSize`), then forgets those events. The run's id derives from its first event, so a release
   * repeated after a crash starts the same run again, which changes nothing.
   */
  private async release(): Promise<void> {
    const functionId = this.get("function_id");
    const rows = this.sql.exec<PendingRow>("SELECT * FROM pending ORDER BY received_at, position, rowid").toArray();
    if (!functionId || rows.length === 0) return;
    const kind = this.get("kind");
    const taken = kind === "batchEvents" ? rows.slice(0, Number(this.get("max_size") ?? rows.length)) : rows;
    const events = taken.map((row) => JSON.parse(row.event) as StoredEvent);
    const handed = kind === "debounce" && this.get("keep_all") !== "1" ? [events.at(-1)!] : events;
    await startCollectedRun(this.env, functionId, kind === "debounce" ? "debounce" : "batch", handed, { id: taken[0]!.id, receivedAt: taken[0]!.received_at });
    for (const row of taken) this.write("DELETE FROM pending WHERE id = ? AND received_at = ?", row.id, row.received_at);
    const left = this.pendingCount();
    this.write("DELETE FROM state WHERE k = 'first_at'");
    // A batch with events left over (more than maxSize came at once) starts its next run on time too.
    if (left > 0) {
      const now = Date.now();
      this.set("first_at", String(now));
      await this.ctx.storage.setAlarm(kind === "batchEvents" && left >= Number(this.get("max_size") ?? 1) ? now : now + Number(this.get("delay") ?? 0));
    }
  }

  private pendingCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM pending").one().n;
  }

  private get(key: string): string | undefined {
    return this.sql.exec<{ v: string }>("SELECT v FROM state WHERE k = ?", key).toArray()[0]?.v;
  }

  private set(key: string, value: string): void {
    this.write("INSERT INTO state (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", key, value);
  }

  /** Writes a setting only when it changes: rows written are the bill, and these are asked at every invocation. */
  private setIfChanged(key: string, value: string): void {
    if (this.get(key) !== value) this.set(key, value);
  }

  private write(query: string, ...bindings: SqlStorageValue[]): void {
    usage.doRowsWritten += this.sql.exec(query, ...bindings).rowsWritten;
  }
}
