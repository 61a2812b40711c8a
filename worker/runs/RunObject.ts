import { DurableObject } from "cloudflare:workers";
import type { StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { CancelReason, StepflareFunction } from "../../sdk/function.ts";
import { NonRetriableError } from "../../sdk/errors/NonRetriableError.ts";
import { serializeError } from "../../sdk/types.ts";
import { resolveInvoke, resolveWait, satisfiesIf, type InvokeResult } from "../../sdk/wait.ts";
import { instrument } from "../platform/bindings.ts";
import { isDevMode, retentionDays, type Env } from "../platform/env.ts";
import { valuesBucket } from "../platform/largeValues.ts";
import { createLogger } from "../platform/logger.ts";
import { findFunction } from "../platform/registry.ts";
import { FINAL_STATUSES, type RunStatus } from "../platform/types.ts";
import { setAlarm, usage } from "../platform/usage.ts";
import { loadRemoteFunctions } from "../remote/apps.ts";
import { CallCheckpoints, type CheckpointVerdict } from "../remote/checkpoints.ts";
import type { Op } from "../remote/wire.ts";
import { DAY_MS, nextAlarm } from "./alarm.ts";
import { RunDelivery } from "./delivery.ts";
import { deleteRunRecords, expireRun, type ExpireOutcome } from "./expire.ts";
import type { RunFacts } from "./health.ts";
import { invoke, WATCHDOG_MS, type InvocationContext } from "./invocation.ts";
import { cancellationEvents } from "./outbox.ts";
import { withoutDepth } from "./depth.ts";
import { cancelAsRepair, inspectRun, repointRun, wakeRun, type RepairContext } from "./repairs.ts";
import { failRun, finishRun, listOpenRun, recordOutcome, type RunEndContext } from "./runEnd.ts";
import { storeAndStart, type RunStartContext } from "./runStart.ts";
import { RunSlots } from "./slots.ts";
import { RunStore, type RunRecord } from "./RunStore.ts";
import { RunStream } from "./runStream.ts";
import { resolutionTime, type RunInit, type RunWithSteps } from "./records.ts";

/** Invocations in a row that may break outside the handler (storage failing) before the run fails for good. */
const MAX_FAILED_INVOCATIONS = 5;

export type { RunInit, RunWithSteps };

/**
 * One function run (DESIGN "A run"): its record and steps in this object's SQLite, the handler
 * executed here through the SDK's driver, and every timer (start, sleep, retry, watchdog, delivery)
 * on the alarm; at retention the tick has it deleted (`expire`).
 */
export class RunObject extends DurableObject<Env> {
  private readonly store: RunStore;
  /** The run's live stream: its subscribers hear every change the store writes. */
  private readonly stream = new RunStream();
  /** The invocation in progress, so nothing starts a second one beside it. */
  private executing: Promise<void> | null = null;
  /** Invocations in a row that broke outside the handler. */
  private failedInvocations = 0;
  /** The earliest time a wait or child run was resolved during the invocation in progress: the run is due again then. */
  private resolvedDuringInvocation: number | undefined;
  /** The calls to a remote function's app in progress that may checkpoint, by call id: what accepts their steps. */
  private readonly checkpoints = new CallCheckpoints();
  /** Starts waiting for the invocation in progress (runs/runStart.ts): a run's end arms no alarm meanwhile. */
  private startsWaiting = 0;
  /** An invocation holds its concurrency slots now (its step bodies may still be running). */
  private holdingSlots = false;
  /** Its slots of the function's concurrency limits, and its throttle turn. */
  private readonly slots: RunSlots;
  /** What delivers its outbox and its end. */
  private readonly delivery: RunDelivery;
  /** What a run's start needs of this object (runs/runStart.ts). */
  private readonly starts: RunStartContext;
  /** What recording an invocation's outcome needs of this object (runs/runEnd.ts). */
  private readonly ends: RunEndContext;
  /** What the stuck check's facts and repairs need of this object (runs/repairs.ts). */
  private readonly repairs: RepairContext;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, instrument(env));
    this.store = new RunStore(ctx.storage.sql, this.stream, valuesBucket(this.env));
    this.slots = new RunSlots(this.env);
    this.delivery = new RunDelivery(this.env, this.store, {
      resolveWait: (stepId, index, event) => this.resolveWait(stepId, index, event),
      resolveInvoke: (stepId, result) => this.resolveInvoke(stepId, result),
      cancel: (reason) => this.cancel(reason),
      releaseFlow: () => this.releaseFlow(),
      holdsSlots: () => this.holdingSlots,
      rearm: () => this.rearm(),
    });
    this.starts = {
      store: this.store,
      delivery: this.delivery,
      functionOf: (id) => this.functionOf(id),
      setAlarm: (at) => setAlarm(this.ctx.storage, at),
      execute: (isFirst) => this.execute(isFirst),
      invoking: () => this.executing,
      alarmAt: () => this.ctx.storage.getAlarm(),
      rearm: () => this.rearm(),
      endDelivered: () => this.delivery.endDelivered,
      waiting: (change) => (this.startsWaiting += change),
      cancel: (reason) => this.cancel(reason),
    };
    this.ends = {
      env: this.env,
      store: this.store,
      delivery: this.delivery,
      rearm: () => this.rearm(),
      armSoon: () => this.armSoon(),
      cancelIf: (reason, expression) => this.cancelIf(reason, expression),
      dueAt: (wakeAt) => this.dueAt(wakeAt),
    };
    this.repairs = {
      store: this.store,
      functionOf: (id) => this.functionOf(id),
      alarmAt: () => this.ctx.storage.getAlarm(),
      setAlarm: (at) => setAlarm(this.ctx.storage, at),
      isInvoking: () => this.executing !== null,
      execute: () => void this.execute(false),
      cancel: (reason) => this.cancel(reason),
    };
  }

  /** Stores the run once and starts it, or arms the alarm for a delayed start (runs/runStart.ts). */
  async start(init: RunInit): Promise<RunStatus> {
    return storeAndStart(this.starts, init);
  }

  /**
   * An event for a wait step of this run (the queue consumer found it in the waits index), received
   * at `receivedAt`. Answers "stale" when the step no longer waits for it: resolved already, the
   * run ended, or timed out before the event was received or before an invocation that has already
   * begun (and so saw the timeout); not merely before the event was looked up.
   */
  async resolveWait(stepId: string, index: number, event: StoredEvent, receivedAt?: number): Promise<"resolved" | "stale"> {
    const step = this.store.steps().get(stepId);
    const run = this.store.run();
    if (!step || !run || FINAL_STATUSES.has(run.status)) return "stale";
    return this.applyResolution(resolveWait(step, index, withoutDepth([event])[0]!, resolutionTime(run, receivedAt)));
  }

  /** How a child run of this run's invoke step ended. Answers "stale" as resolveWait does. */
  async resolveInvoke(stepId: string, result: InvokeResult): Promise<"resolved" | "stale"> {
    const step = this.store.steps().get(stepId);
    const run = this.store.run();
    if (!step || !run || FINAL_STATUSES.has(run.status)) return "stale";
    return this.applyResolution(resolveInvoke(step, result, resolutionTime(run)));
  }

  /**
   * Stores a resolved step and wakes the run. The resolution time is after the current
   * invocation's start, so a replay settles the step where the first pass did: after everything
   * the invocation in progress (which never saw the result) stored.
   */
  private async applyResolution(resolved: StepRecord | null): Promise<"resolved" | "stale"> {
    if (!resolved) return "stale";
    this.store.saveStep(resolved);
    if (resolved.status === "waiting") return "resolved"; // an "all" wait still missing events
    const at = resolved.wakeAt!;
    if (this.executing) {
      this.resolvedDuringInvocation = Math.min(this.resolvedDuringInvocation ?? at, at);
      return "resolved";
    }
    this.store.wakeAt(at);
    await setAlarm(this.ctx.storage, at);
    void this.execute(false);
    return "resolved";
  }

  override async alarm(): Promise<void> {
    usage.doRequests++;
    // The invocation in progress records its own next timer when it ends: a stored wake or retry
    // time is never cut short by a watchdog that fired meanwhile. That timer may be this very alarm (a
    // retry after 5 ms, set before the invocation finished ending), which the runtime deletes as it
    // fires it: set again from the record, or the run would never wake.
    if (this.executing) {
      await this.executing;
      return this.rearm();
    }
    await this.delivery.deliverOutbox();
    const run = this.store.run();
    if (!run) return;
    if (!FINAL_STATUSES.has(run.status)) return this.execute(false, true);
    if (Date.now() < (run.endedAt ?? 0) + retentionDays(this.env) * DAY_MS) {
      // Once per isolate: an alarm for the trace's next try does not write the end again.
      if (!this.delivery.endDelivered) await this.delivery.deliverEnd(run);
      await this.delivery.exportTrace();
      return this.rearm();
    }
    // The retention alarm of an object of an earlier release: the run's records go (DESIGN "Retention").
    await deleteRunRecords(this.store, this.ctx.storage);
  }

  /** Deletes the run's records if it is over (asked by the tick at retention, through the queue: runs/expire.ts); answers what happened. */
  async expire(): Promise<ExpireOutcome> {
    return expireRun(this.store, this.ctx.storage);
  }

  /** The run with its steps; null if this object holds no run. */
  async getRun(): Promise<RunWithSteps | null> {
    const run = this.store.run();
    return run ? { run, steps: [...(await this.store.loadedSteps()).values()] } : null;
  }

  /**
   * The run's live stream, server-sent events (`GET /v1/runs/:runId/stream` forwards its request
   * here): its history, then each change as it is stored, until the run ends.
   */
  override async fetch(request: Request): Promise<Response> {
    const run = this.store.run();
    if (!run) return Response.json({ error: "this object holds no run" }, { status: 404 });
    return this.stream.subscribe(run, (await this.store.loadedSteps()).values(), request.headers.get("last-event-id"));
  }

  /** The run without its steps, for listings; null if this object holds no run. */
  async summary(): Promise<RunRecord | null> {
    return this.store.run();
  }

  /**
   * The run's status and end time, for the tick's repair of the runs index; null if no run. A run
   * that is not over and has no alarm (the runtime gave up retrying one) gets one again.
   */
  async status(): Promise<{ status: RunStatus; endedAt?: number } | null> {
    const run = this.store.run();
    if (!run) return null;
    if (!FINAL_STATUSES.has(run.status) && !this.executing && (await this.ctx.storage.getAlarm()) === null) {
      await setAlarm(this.ctx.storage, Date.now());
    }
    return { status: run.status, ...(run.endedAt ? { endedAt: run.endedAt } : {}) };
  }

  /** The run's facts for the tick's stuck check (runs/repairs.ts); null if no run. */
  async inspect(): Promise<RunFacts | null> {
    return inspectRun(this.repairs);
  }

  /** Makes the run due now, a repair (runs/repairs.ts); answers its status. */
  async wake(by?: string): Promise<RunStatus | null> {
    return wakeRun(this.repairs, by);
  }

  /** Points the run at another, registered function, then wakes it (runs/repairs.ts). */
  async repoint(functionId: string): Promise<{ status: RunStatus; repointed: boolean } | null> {
    return repointRun(this.repairs, functionId);
  }

  /** Cancels the run as a repair, recorded on its timeline (runs/repairs.ts). */
  async repairCancel(rerunAs?: string): Promise<RunStatus | null> {
    return cancelAsRepair(this.repairs, rerunAs);
  }

  /**
   * Dev mode's fault switch for the stuck-run tests: deletes the run's alarm, as a runtime that lost it
   * would. False when the object holds no run (or not in dev mode).
   */
  async dropAlarm(): Promise<boolean> {
    if (!isDevMode(this.env) || !this.store.run()) return false;
    await this.ctx.storage.deleteAlarm();
    return true;
  }

  /**
   * Cancels the run: it stops at its next step boundary, a running step's result is discarded,
   * its timers and waits go, and its `inngest/function.cancelled` event (which starts `onCancel`)
   * leaves in the commit that ends it. A run that has ended stays as it is.
   */
  async cancel(reason: CancelReason = { type: "api" }): Promise<RunWithSteps | null> {
    const run = this.store.run();
    if (!run) return null;
    await finishRun(this.ends, run, "Cancelled", {}, cancellationEvents(run, reason));
    return this.getRun();
  }

  /** Cancels the run if it has not ended and its trigger event satisfies `expression` (a bulk cancellation); answers whether it did. */
  async cancelIf(reason: CancelReason, expression?: string): Promise<boolean> {
    const run = this.store.run();
    if (!run || FINAL_STATUSES.has(run.status)) return false;
    if (expression && !satisfiesIf(expression, run.events[0]!, run.events[0]!)) return false;
    await this.cancel(reason);
    return true;
  }

  /** Starts an invocation unless one is running; `byAlarm` when the alarm handler runs it (and stays until it ends). */
  private execute(isFirst: boolean, byAlarm = false): Promise<void> {
    this.executing ??= this.invoke(isFirst, byAlarm)
      .then(() => {
        this.failedInvocations = 0;
      })
      .catch((err: unknown) => this.invocationFailed(err))
      .finally(() => {
        this.executing = null;
        this.wakeForLateResolution();
      });
    return this.executing;
  }

  /**
   * A wait or child run resolved after the invocation recorded its outcome (while it gave its slots
   * back, say) is not lost: the run is due then, and goes on at once.
   */
  private wakeForLateResolution(): void {
    const at = this.resolvedDuringInvocation;
    this.resolvedDuringInvocation = undefined;
    const run = this.store.run();
    if (at === undefined || !run || FINAL_STATUSES.has(run.status)) return;
    this.store.wakeAt(Math.min(at, run.wakeAt ?? at));
    void setAlarm(this.ctx.storage, Math.min(at, run.wakeAt ?? at)).then(() => this.execute(false));
  }

  /**
   * An invocation that broke outside the handler (storage failing, say) is retried by the alarm;
   * one that keeps breaking fails the run, so that every run reaches a final state.
   */
  private async invocationFailed(err: unknown): Promise<void> {
    this.failedInvocations++;
    const run = this.store.run();
    const logger = createLogger({ run_id: run?.id ?? null, function_id: run?.functionId ?? null });
    logger.error("run invocation failed", { failures: this.failedInvocations, error: String(err) });
    if (run && !FINAL_STATUSES.has(run.status) && this.failedInvocations >= MAX_FAILED_INVOCATIONS) {
      const message = `the run could not record its progress ${MAX_FAILED_INVOCATIONS} times in a row: ${serializeError(err).message}`;
      return failRun(this.ends, run, serializeError(new NonRetriableError(message)));
    }
    await setAlarm(this.ctx.storage, Date.now() + WATCHDOG_MS);
  }

  /** Runs the handler once against the stored steps (runs/invocation.ts) and records what came of it. */
  private invoke(isFirst: boolean, byAlarm: boolean): Promise<void> {
    // An invocation the alarm handler runs ends inside it, and the runtime runs that alarm again should
    // the handler die: the end it records needs no alarm of its own to be delivered.
    const ends: RunEndContext = byAlarm ? { ...this.ends, armSoon: async () => {} } : this.ends;
    const ctx: InvocationContext = {
      env: this.env,
      store: this.store,
      slots: this.slots,
      checkpoints: this.checkpoints,
      functionOf: (id) => this.functionOf(id),
      setAlarm: (at) => setAlarm(this.ctx.storage, at),
      rearm: () => this.rearm(),
      cancel: (reason) => this.cancel(reason),
      fail: (run, error) => failRun(ends, run, error),
      record: (run, outcome, logger) => recordOutcome(ends, run, outcome, logger),
      deliverOutbox: () => this.delivery.deliverOutbox(),
      listOpen: () => listOpenRun(this.ends),
      holdingSlots: (holding) => (this.holdingSlots = holding),
      sync: () => this.ctx.storage.sync(),
      abort: (reason) => this.ctx.abort(reason),
    };
    return invoke(ctx, isFirst, byAlarm);
  }

  /**
   * Steps an app's SDK ran during the call `callId` to it and reports before answering (Inngest v4's
   * checkpointing): stored at once. Otherwise the verdict says why not (remote/checkpoints.ts): no
   * call of that id is in progress (the invocation that made it has ended, or died with the
   * runtime), the run was cancelled, or a step was refused; the SDK stops, as on Inngest's 409.
   */
  async checkpoint(callId: string, ops: Op[]): Promise<CheckpointVerdict> {
    return this.checkpoints.deliver(callId, ops);
  }

  /**
   * The run's function: the Worker's own, or a synced app's (read again from D1 when this isolate
   * does not know it: the app may have synced in another isolate). Throws when D1 cannot say, so
   * that an outage retries the invocation rather than failing a run of a function it did not find.
   */
  private async functionOf(id: string): Promise<StepflareFunction | undefined> {
    const known = findFunction(id);
    if (known) return known;
    await loadRemoteFunctions(this.env, { force: true, required: true });
    return findFunction(id);
  }

  /** A concurrency coordinator gave this run a slot, or a throttle its start: its invocation can go on. */
  async slotGranted(by: "concurrency" | "throttle" = "throttle"): Promise<void> {
    const run = this.store.run();
    // A grant that reaches a run already over is handed back at once, not left to its lease's expiry.
    if (run && FINAL_STATUSES.has(run.status)) return void this.releaseFlow().catch(() => undefined);
    if (by === "concurrency") this.slots.granted();
    void this.execute(false);
  }

  /** Gives back the run's slots and its places in its coordinators' queues (it ended). */
  private async releaseFlow(): Promise<void> {
    const run = this.store.run();
    const fn = run ? await this.functionOf(run.functionId) : undefined;
    if (run && fn) await this.slots.withdraw(run, fn);
  }

  /** When the run is due after an invocation that asked for `wakeAt`: sooner if a wait was resolved meanwhile. */
  private dueAt(wakeAt: number): number {
    const resolved = this.resolvedDuringInvocation;
    this.resolvedDuringInvocation = undefined;
    return resolved === undefined ? wakeAt : Math.min(wakeAt, resolved);
  }

  /**
   * Sets the alarm as rearm does, unless one is already due within WATCHDOG_MS (a set alarm is a row
   * written) or a start waits for the invocation (its caller starts it again should the object die).
   */
  private async armSoon(): Promise<void> {
    if (this.startsWaiting > 0) return;
    const pending = await this.ctx.storage.getAlarm();
    if (pending !== null && pending <= Date.now() + WATCHDOG_MS) return;
    await this.rearm();
  }

  /** Sets the alarm to the earliest thing the object must do (runs/alarm.ts); none when there is none (a pending one finds nothing to do). */
  private async rearm(): Promise<void> {
    const run = this.store.run();
    if (!run) return;
    const now = Date.now();
    const traceRetryAt = this.delivery.traceRetryAt(now);
    const inputs = { now, undelivered: this.store.nextOutboxEntry() !== null, endDelivered: this.delivery.endDelivered, ...(traceRetryAt !== undefined ? { traceRetryAt } : {}) };
    const at = nextAlarm(run, inputs);
    if (at !== null) await setAlarm(this.ctx.storage, at);
  }
}
