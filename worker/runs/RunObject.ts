import { DurableObject } from "cloudflare:workers";
import type { HandlerFailures, RunOutcome, StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { CancelReason, StepflareFunction } from "../../sdk/function.ts";
import { NonRetriableError } from "../../sdk/errors/NonRetriableError.ts";
import { serializeError, type Logger, type SerializedError } from "../../sdk/types.ts";
import { resolveInvoke, resolveWait, satisfiesIf, type InvokeResult } from "../../sdk/wait.ts";
import { instrument } from "../platform/bindings.ts";
import { isDevMode, retentionDays, type Env } from "../platform/env.ts";
import { valuesBucket } from "../platform/largeValues.ts";
import { createLogger } from "../platform/logger.ts";
import { findFunction } from "../platform/registry.ts";
import { FINAL_STATUSES, type RunStatus } from "../platform/types.ts";
import { usage } from "../platform/usage.ts";
import { traceExport } from "../traces/config.ts";
import { loadRemoteFunctions } from "../remote/apps.ts";
import { CallCheckpoints, type CheckpointVerdict } from "../remote/checkpoints.ts";
import type { Op } from "../remote/wire.ts";
import { DAY_MS, nextAlarm } from "./alarm.ts";
import { RunDelivery, type CancellationRef } from "./delivery.ts";
import { retriesToBringForward, runFacts, type RunFacts } from "./health.ts";
import { invoke, WATCHDOG_MS, type InvocationContext } from "./invocation.ts";
import { cancellationEvents, cancelOnEntries, endEntries, failureEvents, finishedEvents } from "./outbox.ts";
import { endEventsWithinLimit, withoutDepth } from "./depth.ts";
import { RunSlots } from "./slots.ts";
import { RunStore, type RunRecord } from "./RunStore.ts";
import { RunStream } from "./runStream.ts";

/** Invocations in a row that may break outside the handler (storage failing) before the run fails for good. */
const MAX_FAILED_INVOCATIONS = 5;

import { resolutionTime, type RunInit, type RunWithSteps } from "./records.ts";

export type { RunInit, RunWithSteps };

/**
 * One function run (DESIGN "A run"): its record and steps in this object's SQLite, the handler
 * executed here through the SDK's driver, and every timer (start, sleep, retry, watchdog, delivery,
 * retention) on the alarm.
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
  /** An invocation holds its concurrency slots now (its step bodies may still be running). */
  private holdingSlots = false;
  /** Its slots of the function's concurrency limits, and its throttle turn. */
  private readonly slots: RunSlots;
  /** What delivers its outbox and its end. */
  private readonly delivery: RunDelivery;

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
  }

  /**
   * Stores the run (once: a repeated start changes nothing) and starts it, or arms the alarm for a
   * delayed start. Returns as soon as the run is stored, not when it ends.
   */
  async start(init: RunInit): Promise<RunStatus> {
    const existing = this.store.run();
    if (existing) return existing.status;
    const now = Date.now();
    const fn = await this.functionOf(init.functionId);
    // A run under a throttle or a concurrency limit starts as a delayed one does: its first invocation asks for its start or a slot.
    // So is a re-run that reuses steps: its first invocation begins after them, as a replay does.
    const delayed = init.startAt > now || fn?.flow.concurrency !== undefined || fn?.flow.throttle !== undefined || (init.memo?.length ?? 0) > 0;
    const finishAfter = fn?.timeouts.finish;
    const listed = { id: init.runId, functionId: init.functionId, events: init.events, status: "Queued" as const, startedAt: now, listedAt: init.listedAt ?? now, ...(init.parent ? { parent: init.parent } : {}), indexed: false };
    // A run due later is listed now, as Queued; one that starts now writes its row when it is worth one (RunDelivery.indexOpen).
    const indexed = init.startAt > now && (await this.delivery.indexOpen(listed)).indexed;
    // A start repeated while that write was under way found no run either: the first one stored it.
    if (this.store.run()) return this.store.run()!.status;
    this.store.createRun(
      {
        id: init.runId,
        functionId: init.functionId,
        events: init.events,
        startedAt: now,
        listedAt: listed.listedAt,
        indexed,
        ...(delayed ? { wakeAt: init.startAt } : {}),
        ...(init.parent ? { parent: init.parent } : {}),
        ...(!delayed && finishAfter !== undefined ? { finishBy: now + finishAfter } : {}),
      },
      fn ? cancelOnEntries(fn, init.runId, init.events[0]!, Math.min(init.receivedAt ?? now, now)) : [],
    );
    for (const step of init.memo ?? []) this.store.saveStep(step);
    await this.ctx.storage.setAlarm(delayed ? init.startAt : now + WATCHDOG_MS);
    if (fn?.cancelOn.length) void this.delivery.deliverOutbox();
    if (init.startAt <= now && delayed) void this.execute(false);
    if (delayed) return "Queued";
    // Not started within `timeouts.start` of when it was due (dispatch came late): cancelled, never run.
    if (fn?.timeouts.start !== undefined && now > init.startAt + fn.timeouts.start) {
      await this.cancel({ type: "timeout", timeout: "start" });
      return "Cancelled";
    }
    void this.execute(true);
    return "Running";
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
    await this.ctx.storage.setAlarm(at);
    void this.execute(false);
    return "resolved";
  }

  override async alarm(): Promise<void> {
    usage.doRequests++;
    // The invocation in progress records its own next timer when it ends: a stored wake or retry
    // time is never cut short by a watchdog that fired meanwhile.
    if (this.executing) return void (await this.executing);
    await this.delivery.deliverOutbox();
    const run = this.store.run();
    if (!run) return;
    if (!FINAL_STATUSES.has(run.status)) return this.execute(false);
    if (Date.now() < (run.endedAt ?? 0) + retentionDays(this.env) * DAY_MS) {
      // Once per isolate: an alarm for the trace's next try does not write the end again.
      if (!this.delivery.endDelivered) await this.delivery.deliverEnd(run);
      await this.delivery.exportTrace();
      return this.rearm();
    }
    // The retention period is over: the run's records go (DESIGN "Retention").
    await this.store.deleteValues();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.store.clear();
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
      await this.ctx.storage.setAlarm(Date.now());
    }
    return { status: run.status, ...(run.endedAt ? { endedAt: run.endedAt } : {}) };
  }

  /**
   * The run's facts for the tick's stuck check (admin/stuck.ts): its alarm, its wake time, whether
   * its function is registered, since when a step retries. Changes nothing; null if no run.
   */
  async inspect(): Promise<RunFacts | null> {
    const run = this.store.run();
    if (!run) return null;
    if (FINAL_STATUSES.has(run.status)) return runFacts(run, [], { alarmAt: null, invoking: false });
    // A registry that cannot be read (D1 down) says nothing about the function.
    const fn = await this.functionOf(run.functionId).then((found) => found ?? null, () => undefined);
    const live = { alarmAt: await this.ctx.storage.getAlarm(), invoking: this.executing !== null, flowControlled: fn?.flow.concurrency !== undefined || fn?.flow.throttle !== undefined };
    return runFacts(run, this.store.steps().values(), fn === undefined ? live : { ...live, functionRegistered: fn !== null });
  }

  /**
   * Makes the run due now (a repair): its wake time and any retry's backoff are brought forward,
   * its alarm set, an invocation started. Sleeps and waits keep their times. Idempotent; a run that
   * has ended stays as it is. Answers the run's status.
   */
  async wake(by?: string): Promise<RunStatus | null> {
    const run = this.store.run();
    if (!run || FINAL_STATUSES.has(run.status)) return run?.status ?? null;
    const now = Date.now();
    for (const step of retriesToBringForward(this.store.steps().values(), now)) this.store.saveStep(step);
    this.store.recordRepair({ action: "wake", at: now, ...(by ? { detail: by } : {}) });
    if (!run.isOpen) this.store.wakeAt(Math.min(run.wakeAt ?? now, now));
    await this.ctx.storage.setAlarm(now);
    void this.execute(false);
    return run.status;
  }

  /**
   * Points the run at another function (a deploy renamed its own), then wakes it. The caller
   * checked that `functionId` is registered; pointing it where it points already changes nothing.
   */
  async repoint(functionId: string): Promise<RunStatus | null> {
    const run = this.store.run();
    if (!run || FINAL_STATUSES.has(run.status) || run.functionId === functionId) return run?.status ?? null;
    this.store.recordRepair({ action: "repoint", at: Date.now(), detail: `${run.functionId} → ${functionId}` }, functionId);
    return this.wake();
  }

  /** Cancels the run as a repair (recorded on its timeline); a run that has ended stays as it is. */
  async repairCancel(rerunAs?: string): Promise<RunStatus | null> {
    const run = this.store.run();
    if (!run || FINAL_STATUSES.has(run.status)) return run?.status ?? null;
    this.store.recordRepair(rerunAs ? { action: "rerun", at: Date.now(), detail: rerunAs } : { action: "cancel", at: Date.now() });
    await this.cancel({ type: "api" });
    return this.store.run()?.status ?? null;
  }

  /** Dev mode's fault switch for the stuck-run tests: deletes the object's alarm, as a runtime that lost it would. */
  async dropAlarm(): Promise<boolean> {
    if (!isDevMode(this.env)) return false;
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
    await this.finish(run, "Cancelled", {}, cancellationEvents(run, reason));
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

  private execute(isFirst: boolean): Promise<void> {
    this.executing ??= this.invoke(isFirst)
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
    void this.ctx.storage.setAlarm(Math.min(at, run.wakeAt ?? at)).then(() => this.execute(false));
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
      return this.fail(run, serializeError(new NonRetriableError(message)));
    }
    await this.ctx.storage.setAlarm(Date.now() + WATCHDOG_MS);
  }

  /** Runs the handler once against the stored steps (runs/invocation.ts) and records what came of it. */
  private invoke(isFirst: boolean): Promise<void> {
    const ctx: InvocationContext = {
      env: this.env,
      store: this.store,
      slots: this.slots,
      checkpoints: this.checkpoints,
      functionOf: (id) => this.functionOf(id),
      setAlarm: (at) => this.ctx.storage.setAlarm(at),
      rearm: () => this.rearm(),
      cancel: (reason) => this.cancel(reason),
      fail: (run, error) => this.fail(run, error),
      record: (run, outcome, logger) => this.record(run, outcome, logger),
      deliverOutbox: () => this.delivery.deliverOutbox(),
      listOpen: () => this.listOpen(),
      holdingSlots: (holding) => (this.holdingSlots = holding),
      sync: () => this.ctx.storage.sync(),
      abort: (reason) => this.ctx.abort(reason),
    };
    return invoke(ctx, isFirst);
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

  private async record(run: RunRecord, outcome: RunOutcome, logger: Logger): Promise<void> {
    if (FINAL_STATUSES.has(this.store.run()?.status ?? "Running")) return;
    switch (outcome.type) {
      case "completed":
        return this.finish(run, "Completed", { output: outcome.output });
      case "failed":
        return this.fail(run, outcome.error);
      case "suspended":
        return this.suspend(outcome.wakeAt, run.handlerFailures);
      case "retry":
        logger.warn("handler failed; retrying", { attempt: outcome.handlerFailures.count - 1, error: outcome.error.message, ...(outcome.error.stack ? { stack: outcome.error.stack } : {}) });
        return this.suspend(outcome.wakeAt, outcome.handlerFailures);
      case "cancelled":
        return;
    }
  }

  /**
   * The invocation ended with the run waiting: a run that waits is worth its row in the runs index,
   * written first if it has none yet (noted in the same commit as the suspension).
   */
  private async suspend(wakeAt: number, handlerFailures: HandlerFailures): Promise<void> {
    const { indexed, cancellations } = await this.delivery.indexOpen(this.store.run()!);
    // A cancel that came meanwhile ended the run.
    if (FINAL_STATUSES.has(this.store.run()?.status ?? "Running")) return;
    this.store.suspend(this.dueAt(wakeAt), handlerFailures, indexed);
    if (await this.meetCancellations(cancellations)) return;
    return this.rearm();
  }

  /** Lists a run not over yet in the runs index, if it is not: it queues for a slot or its turn, or runs a while. */
  private async listOpen(): Promise<void> {
    const run = this.store.run();
    if (!run || run.indexed || FINAL_STATUSES.has(run.status)) return;
    const { indexed, cancellations } = await this.delivery.indexOpen(run);
    if (indexed) this.store.markIndexed();
    await this.meetCancellations(cancellations);
  }

  /** Cancels the run by the first bulk cancellation, made while the index did not show it, whose `if` its trigger meets. */
  private async meetCancellations(cancellations: CancellationRef[]): Promise<boolean> {
    for (const { id, expression } of cancellations) {
      if (await this.cancelIf({ type: "bulk", cancellation_id: id }, expression ?? undefined)) return true;
    }
    return false;
  }

  /** When the run is due after an invocation that asked for `wakeAt`: sooner if a wait was resolved meanwhile. */
  private dueAt(wakeAt: number): number {
    const resolved = this.resolvedDuringInvocation;
    this.resolvedDuringInvocation = undefined;
    return resolved === undefined ? wakeAt : Math.min(wakeAt, resolved);
  }

  /**
   * Fails the run for good. Its failure event (which starts `onFailure`) goes to the outbox in the
   * commit that ends the run, so an outage delays it and loses nothing, and a cancel that came
   * first leaves no failure event at all.
   */
  private fail(run: RunRecord, error: SerializedError): Promise<void> {
    return this.finish(run, "Failed", { error }, failureEvents(run, error));
  }

  /**
   * Ends the run: status, result and the events its end sends in one commit (whatever ended the
   * run first wins, and nothing replaces it), then delivers them and tells the runs index.
   */
  private async finish(run: RunRecord, status: RunStatus, result: { output?: unknown; error?: SerializedError }, events: StoredEvent[] = []): Promise<void> {
    if (FINAL_STATUSES.has(this.store.run()?.status ?? "Running")) return;
    const fn = findFunction(run.functionId);
    const waits = (fn?.cancelOn.length ?? 0) > 0 || [...this.store.steps().values()].some((step) => step.kind === "waitForEvent");
    // In the end's own commit, so a kill right after it still gives them back; while an invocation
    // holds the slots (a step body may still run), the give-back waits for its release.
    const flow = fn?.flow.concurrency !== undefined || fn?.flow.throttle !== undefined;
    // The run's trace, last: built from the run's records when it is sent (worker/traces/), only where an OTLP endpoint is set.
    const trace = traceExport(this.env) ? [{ kind: "trace" as const }] : [];
    const entries = [{ kind: "events" as const, events: endEventsWithinLimit(this.env, run, [...events, ...finishedEvents(run, status, result)]) }, ...endEntries(run, status, result, { waits, flow }), ...trace];
    this.store.end(status, Date.now(), result, entries);
    this.delivery.endDelivered = false;
    await this.rearm();
    await this.delivery.deliverOutbox();
    await this.delivery.deliverEnd(this.store.run() ?? run);
    await this.rearm();
    // Not awaited: a collector that is slow or down never holds the run's end back (the alarm retries it).
    if (trace.length > 0) void this.delivery.exportTrace();
  }

  /** Sets the alarm to the earliest thing the object must do (runs/alarm.ts). */
  private async rearm(): Promise<void> {
    const run = this.store.run();
    if (!run) return;
    const now = Date.now();
    const traceRetryAt = this.delivery.traceRetryAt(now);
    const inputs = { now, undelivered: this.store.nextOutboxEntry() !== null, endDelivered: this.delivery.endDelivered, retentionDays: retentionDays(this.env), ...(traceRetryAt !== undefined ? { traceRetryAt } : {}) };
    await this.ctx.storage.setAlarm(nextAlarm(run, inputs));
  }
}
