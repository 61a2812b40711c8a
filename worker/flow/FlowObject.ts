import { DurableObject } from "cloudflare:workers";
import { instrument } from "../platform/bindings.ts";
import type { Env } from "../platform/env.ts";
import { setAlarm, usage } from "../platform/usage.ts";
import { runObject, startCollectedRun } from "../runs/door.ts";
import { collect, releaseWhenDue, type CollectAsk } from "./collect.ts";
import { acquireSlot, grantWaiting, releaseSlot } from "./concurrency.ts";
import type { Coordinator } from "./coordinator.ts";
import { admit, type FlowAnswer, type FlowAsk } from "./decisions.ts";
import { decideBudget, resetBudget, type BudgetAnswer, type BudgetAsk } from "./budget.ts";
import { stepsSince } from "../db/runs.ts";
import { FlowStore, type ThrottleRate } from "./state.ts";
import { acquireStart, grantStarts, withdrawStart, type StartAnswer } from "./throttle.ts";

export { LEASE_MS } from "./concurrency.ts";
export type { CollectAsk } from "./collect.ts";
export type { FlowAnswer, FlowAsk } from "./decisions.ts";
export type { BudgetAnswer, BudgetAsk } from "./budget.ts";
export type { ThrottleRate } from "./state.ts";
export type { StartAnswer } from "./throttle.ts";

/**
 * One flow-control coordinator per (function, option, key value) (DESIGN "Flow control"): only
 * functions that ask for flow control reach one, and no lock is shared beyond that key. Its SQLite
 * holds a rate's state (GCRA), recent decisions (so a redelivered event is answered alike), the
 * slots and queue of a concurrency limit, and the events a debounce or batch is collecting, started
 * as one run on its alarm. Each kind of control lives in a module of its own beside this shell.
 */
export class FlowObject extends DurableObject<Env> {
  private readonly coordinator: Coordinator;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, instrument(env));
    const store = new FlowStore(ctx.storage.sql);
    this.coordinator = {
      store,
      setAlarm: (at) => setAlarm(ctx.storage, at),
      getAlarm: () => ctx.storage.getAlarm(),
      deleteAlarm: () => ctx.storage.deleteAlarm(),
      exclusively: (work) => ctx.blockConcurrencyWhile(work),
      tellGranted: (runIds) => {
        const by = store.get("kind") === "concurrency" ? "concurrency" : "throttle";
        return Promise.all(runIds.map((id) => runObject(this.env, id).slotGranted(by).catch(() => undefined)));
      },
      startCollected: async (functionId, kind, events, handLastOnly) => ((await startCollectedRun(this.env, functionId, kind, events, handLastOnly)) ? "started" : "held"),
      runStatus: (runId) => runObject(this.env, runId).status(),
      cancelRun: (runId, reason) => runObject(this.env, runId).cancelIf(reason),
    };
  }

  /** Decides whether (and when) a run starts (idempotency, rate limit, singleton); the same run asked again gets the same answer. */
  async admit(ask: FlowAsk, now = Date.now()): Promise<FlowAnswer> {
    usage.doRequests++;
    return admit(this.coordinator, ask, now);
  }

  /** Counts a run of `functionId` against its budget, or answers that the budget is spent (flow/budget.ts). */
  async budget(functionId: string, ask: BudgetAsk, now = Date.now()): Promise<BudgetAnswer> {
    usage.doRequests++;
    return decideBudget(this.coordinator, ask, now, (since) => stepsSince(this.env, functionId, since));
  }

  /** The function was resumed: its budget counts again from now (flow/budget.ts). */
  async resetBudget(now = Date.now()): Promise<void> {
    usage.doRequests++;
    resetBudget(this.coordinator, now);
  }

  /** Collects an event for a debounce or a batch (flow/collect.ts). */
  async collect(ask: CollectAsk, now = Date.now()): Promise<void> {
    usage.doRequests++;
    return collect(this.coordinator, ask, now);
  }

  /** Asks a throttle for a run's start, at its first invocation (flow/throttle.ts). */
  async acquireStart(runId: string, rate: ThrottleRate, orderKey: number, now = Date.now()): Promise<StartAnswer> {
    usage.doRequests++;
    return acquireStart(this.coordinator, runId, rate, orderKey, now);
  }

  /** Asks for a concurrency slot for an invocation of a run, or renews it (flow/concurrency.ts). */
  async acquire(runId: string, limit: number, orderKey: number, now = Date.now()): Promise<boolean> {
    usage.doRequests++;
    return acquireSlot(this.coordinator, runId, limit, orderKey, now);
  }

  /** Gives back a run's slot (its invocation ended) and hands free slots to the runs waiting first. */
  async releaseSlot(runId: string, now = Date.now()): Promise<void> {
    usage.doRequests++;
    return releaseSlot(this.coordinator, runId, now);
  }

  /**
   * Forgets a run that has ended: its slot and its place in the queue (a concurrency limit), or its
   * place in the queue and a start it never used (a throttle), handing on what it held at once.
   */
  async withdraw(runId: string, started: boolean, now = Date.now()): Promise<void> {
    usage.doRequests++;
    const kind = this.coordinator.store.get("kind");
    if (kind === "concurrency") return releaseSlot(this.coordinator, runId, now);
    if (kind === "throttle") return withdrawStart(this.coordinator, runId, now, started);
  }

  override async alarm(): Promise<void> {
    usage.doRequests++;
    const kind = this.coordinator.store.get("kind");
    if (kind === "concurrency") return grantWaiting(this.coordinator, Date.now());
    if (kind === "throttle") return void (await grantStarts(this.coordinator, Date.now()));
    await releaseWhenDue(this.coordinator, Date.now());
  }
}
