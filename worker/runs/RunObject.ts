import { DurableObject } from "cloudflare:workers";
import { systemClock } from "../../sdk/clock.ts";
import { executeRun, type RunHost, type RunOutcome, type StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { CancelReason, StepflareFunction } from "../../sdk/function.ts";
import { flowObject } from "../flow/admission.ts";
import { LEASE_MS, type ThrottleRate } from "../flow/FlowObject.ts";
import type { Throttle } from "../../sdk/flow.ts";
import { NonRetriableError } from "../../sdk/errors/NonRetriableError.ts";
import { highestSeq } from "../../sdk/replay.ts";
import { serializeError, type Logger, type SerializedError } from "../../sdk/types.ts";
import { resolveInvoke, resolveWait, satisfiesIf, type InvokeResult } from "../../sdk/wait.ts";
import { instrument } from "../platform/bindings.ts";
import { retentionDays, type Env } from "../platform/env.ts";
import { runAsObject } from "../platform/faults.ts";
import { parseEvents } from "../ingest/ingest.ts";
import { createLogger } from "../platform/logger.ts";
import { FINAL_STATUSES, type RunStatus } from "../queue/messages.ts";
import { findFunction } from "../platform/registry.ts";
import { isDevMode } from "../routes/auth.ts";
import { usage } from "../platform/usage.ts";
import { cancellationEvents, cancelOnEntries, deliverEntry, endEntries, failureEvents, finishedEvents, requestEntries } from "./outbox.ts";
import { RunStore, type OutboxEntry, type RunParent, type RunRecord } from "./RunStore.ts";
import { RunStream } from "./runStream.ts";
import { loadRemoteFunctions } from "../remote/apps.ts";
import { CallCheckpoints } from "../remote/checkpoints.ts";
import { executeRemoteRun } from "../remote/execute.ts";
import type { Op } from "../remote/wire.ts";
import { RemoteFunction } from "../remote/function.ts";
import { appRequestSigner } from "../remote/signer.ts";

/**
 * A run started by start() executes outside any alarm, so its alarm stands this far ahead as a
 * watchdog: if the runtime dies mid-run, the alarm fires after restart and the run resumes from its
 * stored steps. A run woken by its alarm needs none: the runtime retries an alarm whose handler
 * did not finish.
 */
const WATCHDOG_MS = 10_000;
/** How soon an outbox entry or a run's end that could not be delivered is tried again. */
const DELIVERY_RETRY_MS = 5_000;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Invocations in a row that may break outside the handler (storage failing) before the run fails for good. */
const MAX_FAILED_INVOCATIONS = 5;

/** How long after its expected turn a run waiting on a throttle asks again, should its wake-up be lost. */
const THROTTLE_RECHECK_MS = 1_000;

/** A run's place in a flow coordinator's queue: the time it was created, less its priority in seconds. */
function queueOrder(run: RunRecord, fn: StepflareFunction): number {
  return run.startedAt - (fn.flow.priorityOf?.(run.events[0]!) ?? 0) * 1000;
}

function throttleRate(throttle: Throttle): ThrottleRate {
  return { limit: throttle.limit, period: throttle.period, burst: throttle.limit + (throttle.burst ?? 0) };
}

/** A run's record with its steps. */
export interface RunWithSteps {
  run: RunRecord;
  steps: StepRecord[];
}

export interface RunInit {
  runId: string;
  functionId: string;
  events: StoredEvent[];
  /** Epoch ms to start at: now, or an event's future `ts` (a delayed run). */
  startAt: number;
  /** The run whose step.invoke started this one. */
  parent?: RunParent;
  /** Steps a re-run from a step reuses, as the run it re-runs stored them: they are not run again. */
  memo?: StepRecord[];
}

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
  /** The outbox delivery in progress, so two never send the same entry at once. */
  private delivering: Promise<void> | null = null;
  /** Invocations in a row that broke outside the handler. */
  private failedInvocations = 0;
  /** The run's end reached the runs index (in memory: after a restart the alarm sends it again, harmlessly). */
  private endDelivered = false;
  /** The earliest time a wait or child run was resolved during the invocation in progress: the run is due again then. */
  private resolvedDuringInvocation: number | undefined;
  /** The calls to a remote function's app in progress that may checkpoint, by call id: what accepts their steps. */
  private readonly checkpoints = new CallCheckpoints();
  /** When a concurrency coordinator last gave this run its slot (in memory: after a restart the run asks again). */
  private slotGrantedAt: number | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, instrument(env));
    this.store = new RunStore(ctx.storage.sql, this.stream);
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
    this.store.createRun(
      {
        id: init.runId,
        functionId: init.functionId,
        events: init.events,
        startedAt: now,
        ...(delayed ? { wakeAt: init.startAt } : {}),
        ...(init.parent ? { parent: init.parent } : {}),
        ...(!delayed && finishAfter !== undefined ? { finishBy: now + finishAfter } : {}),
      },
      fn ? cancelOnEntries(fn, init.runId, init.events[0]!, now) : [],
    );
    for (const step of init.memo ?? []) this.store.saveStep(step);
    await this.ctx.storage.setAlarm(delayed ? init.startAt : now + WATCHDOG_MS);
    if (fn?.cancelOn.length) void this.deliverOutbox();
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
   * An event for a wait step of this run (the queue consumer found it in the waits index). Answers
   * "stale" when the step no longer waits for it: resolved already, timed out, or the run ended.
   */
  async resolveWait(stepId: string, index: number, event: StoredEvent): Promise<"resolved" | "stale"> {
    const step = this.store.steps().get(stepId);
    const run = this.store.run();
    if (!step || !run || FINAL_STATUSES.has(run.status)) return "stale";
    return this.applyResolution(resolveWait(step, index, event, this.resolutionTime(run)));
  }

  /** How a child run of this run's invoke step ended. Answers "stale" as resolveWait does. */
  async resolveInvoke(stepId: string, result: InvokeResult): Promise<"resolved" | "stale"> {
    const step = this.store.steps().get(stepId);
    const run = this.store.run();
    if (!step || !run || FINAL_STATUSES.has(run.status)) return "stale";
    return this.applyResolution(resolveInvoke(step, result, this.resolutionTime(run)));
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

  private resolutionTime(run: RunRecord): number {
    return Math.max(Date.now(), (run.starts.at(-1)?.at ?? 0) + 1);
  }

  override async alarm(): Promise<void> {
    usage.doRequests++;
    // The invocation in progress records its own next timer when it ends: a stored wake or retry
    // time is never cut short by a watchdog that fired meanwhile.
    if (this.executing) return void (await this.executing);
    await this.deliverOutbox();
    const run = this.store.run();
    if (!run) return;
    if (!FINAL_STATUSES.has(run.status)) return this.execute(false);
    if (Date.now() < (run.endedAt ?? 0) + retentionDays(this.env) * DAY_MS) {
      await this.deliverEnd(run);
      return this.rearm();
    }
    // The retention period is over: the run's records go (DESIGN "Retention").
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.store.clear();
  }

  /** The run with its steps; null if this object holds no run. */
  async getRun(): Promise<RunWithSteps | null> {
    const run = this.store.run();
    return run ? { run, steps: [...this.store.steps().values()] } : null;
  }

  /**
   * The run's live stream, server-sent events (`GET /v1/runs/:runId/stream` forwards its request
   * here): its history, then each change as it is stored, until the run ends.
   */
  override async fetch(request: Request): Promise<Response> {
    const run = this.store.run();
    if (!run) return Response.json({ error: "this object holds no run" }, { status: 404 });
    return this.stream.subscribe(run, this.store.steps().values(), request.headers.get("last-event-id"));
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
      .finally(() => (this.executing = null));
    return this.executing;
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

  /** Runs the handler once against the stored steps and records what came of it. */
  private async invoke(isFirst: boolean): Promise<void> {
    let run = this.store.run();
    if (!run || FINAL_STATUSES.has(run.status)) return;
    const now = Date.now();
    if (run.finishBy !== undefined && now >= run.finishBy) return void (await this.cancel({ type: "timeout", timeout: "finish" }));
    // Woken early (a watchdog, a delivery retry, the tick): a stored wake or retry time stands.
    if (!run.isOpen && run.wakeAt !== undefined && run.wakeAt > now) return this.rearm();
    const logger = createLogger({ run_id: run.id, function_id: run.functionId });
    const fn = await this.functionOf(run.functionId);
    if (!fn) return this.fail(run, serializeError(new NonRetriableError(`function "${run.functionId}" is not registered in this Worker`)));
    // A delayed run's first invocation: late by more than `timeouts.start` (the Worker was down), it never runs.
    const isDelayedStart = run.starts.length === 0;
    if (isDelayedStart && fn.timeouts.start !== undefined && run.wakeAt !== undefined && now > run.wakeAt + fn.timeouts.start) {
      return void (await this.cancel({ type: "timeout", timeout: "start" }));
    }

    // An invocation that began and never ended died with the runtime (nothing runs it in memory).
    // Under a throttle, no start until it is this run's turn; under a concurrency limit, no slot, no
    // invocation: the coordinator wakes the run when it gives it one (the alarm asks again, should that be lost).
    if (fn.flow.throttle && isDelayedStart) {
      const answer = await this.throttleOf(run, fn).acquireStart(run.id, throttleRate(fn.flow.throttle), queueOrder(run, fn));
      if (!answer.granted) return void (await this.ctx.storage.setAlarm(Math.max(answer.estimate, now) + THROTTLE_RECHECK_MS));
    }
    if (fn.flow.concurrency && !(await this.acquireSlots(run, fn))) return void (await this.ctx.storage.setAlarm(now + LEASE_MS));
    const recovering = !isFirst && run.isOpen;
    if (!isFirst) {
      const finishBy = isDelayedStart && fn.timeouts.finish !== undefined ? now + fn.timeouts.finish : run.finishBy;
      run = this.store.beginInvocation({ at: now, seq: highestSeq(this.store.steps().values()) }, recovering, finishBy);
      // A watchdog of its own, in case the runtime stops retrying an alarm whose handler died.
      await this.ctx.storage.setAlarm(now + WATCHDOG_MS);
    }
    // A death outside any step (a synchronous loop in the handler) leaves no step to blame: after
    // as many deaths in a row as the function has retries (plus the recovery that finds no step), it fails.
    if (run.crashes > fn.retries + 1) {
      const message = `the runtime died ${run.crashes} times in a row while running this run's code outside any step`;
      return this.fail(run, { name: "RuntimeDiedError", message });
    }

    const durable = this.ctx.storage.sync();
    durable.catch(() => undefined); // a failed sync breaks the invocation through the driver
    const host: RunHost = {
      steps: this.store.steps(),
      saveStep: (step, events) => {
        const entries = [...(events?.length ? [{ kind: "events" as const, events }] : []), ...requestEntries(run!, step, this.store.steps().get(step.id))];
        this.store.saveStep(step, entries);
        if (entries.length > 0) void this.deliverOutbox();
      },
      prepareEvents: (events, idAt) => prepareStepEvents(events, idAt),
      // The run's record (first invocation) or this invocation's start is durable before a step body
      // runs: a body that kills the isolate must find it, or its next start would run it again.
      ready: durable,
      isCancelled: () => this.store.run()?.status === "Cancelled",
      clock: systemClock,
    };
    const input = {
      runId: run.id,
      events: run.events,
      handlerFailures: run.handlerFailures,
      retries: fn.retries,
      stepTimeoutMs: fn.stepTimeoutMs,
      logger,
      starts: run.starts,
      recovering,
      middleware: fn.middlewareSetup(),
    };
    const execute = () => (fn instanceof RemoteFunction ? executeRemoteRun(fn, input, host, { sign: appRequestSigner(this.env), checkpoints: this.checkpoints }) : executeRun(fn.handler, input, host));
    // `timeouts.finish` while the handler runs: the cancel stops it at its next step boundary.
    const finishTimer = run.finishBy === undefined ? undefined : setTimeout(() => void this.cancel({ type: "timeout", timeout: "finish" }), run.finishBy - now);
    // A concurrency slot is held while the invocation runs, renewed well before its lease ends.
    const renewTimer = fn.flow.concurrency ? setInterval(() => void this.acquireSlots(run!, fn).catch(() => undefined), LEASE_MS / 3) : undefined;
    try {
      const outcome = await (isDevMode(this.env) ? runAsObject((reason) => this.ctx.abort(reason), execute) : execute());
      await this.record(run, outcome, logger);
    } finally {
      clearTimeout(finishTimer);
      clearInterval(renewTimer);
      // Sleeping and waiting runs hold no slot.
      if (fn.flow.concurrency) await this.releaseSlots(run, fn).catch(() => undefined);
    }
  }

  /**
   * Steps an app's SDK ran during the call `callId` to it and reports before answering (Inngest v4's
   * checkpointing): stored at once. "stale" when no call of that id is in progress (the invocation
   * that made it has ended, or died with the runtime): the SDK stops, as it does on Inngest's 409.
   */
  async checkpoint(callId: string, ops: Op[]): Promise<"stored" | "stale"> {
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
    if (by === "concurrency") this.slotGrantedAt = Date.now();
    void this.execute(false);
  }

  /**
   * Takes a slot of each of the function's concurrency limits (a second ask renews it), or none:
   * a run short of one gives back the others and waits in that limit's queue, in order of its
   * start less its priority.
   */
  private async acquireSlots(run: RunRecord, fn: StepflareFunction): Promise<boolean> {
    const limits = fn.flow.concurrency ?? [];
    // The one limit's coordinator just stored this run's lease and said so: no need to ask it again.
    const grantedAt = this.slotGrantedAt;
    this.slotGrantedAt = undefined;
    if (limits.length === 1 && grantedAt !== undefined && Date.now() - grantedAt < LEASE_MS / 3) return true;
    const orderKey = queueOrder(run, fn);
    for (const [i, limit] of limits.entries()) {
      if (await this.slotOf(fn, i).acquire(run.id, limit.limit, orderKey)) continue;
      await Promise.all(limits.map((_, j) => (j === i ? undefined : this.slotOf(fn, j).releaseSlot(run.id))));
      return false;
    }
    return true;
  }

  private releaseSlots(run: RunRecord, fn: StepflareFunction): Promise<unknown> {
    return Promise.all((fn.flow.concurrency ?? []).map((_, i) => this.slotOf(fn, i).releaseSlot(run.id)));
  }

  private throttleOf(run: RunRecord, fn: StepflareFunction) {
    return flowObject(this.env, fn.id, "throttle", fn.flow.throttle!.keyOf(run.events[0]!));
  }

  private slotOf(fn: StepflareFunction, index: number) {
    const run = this.store.run()!;
    return flowObject(this.env, fn.id, `concurrency:${index}`, fn.flow.concurrency![index]!.keyOf(run.events[0]!));
  }

  private async record(run: RunRecord, outcome: RunOutcome, logger: Logger): Promise<void> {
    if (FINAL_STATUSES.has(this.store.run()?.status ?? "Running")) return;
    switch (outcome.type) {
      case "completed":
        return this.finish(run, "Completed", { output: outcome.output });
      case "failed":
        return this.fail(run, outcome.error);
      case "suspended":
        this.store.suspend(this.dueAt(outcome.wakeAt), run.handlerFailures);
        return this.rearm();
      case "retry":
        logger.warn("handler failed; retrying", { attempt: outcome.handlerFailures.count - 1, error: outcome.error.message });
        this.store.suspend(this.dueAt(outcome.wakeAt), outcome.handlerFailures);
        return this.rearm();
      case "cancelled":
        return;
    }
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
    const hasWaits = (findFunction(run.functionId)?.cancelOn.length ?? 0) > 0 || [...this.store.steps().values()].some((step) => step.kind === "waitForEvent");
    this.store.end(status, Date.now(), result, [{ kind: "events", events: [...events, ...finishedEvents(run, status, result)] }, ...endEntries(run, status, result, hasWaits)]);
    this.endDelivered = false;
    await this.rearm();
    await this.deliverOutbox();
    await this.deliverEnd(this.store.run() ?? run);
    await this.rearm();
  }

  /** Sends the outbox's events through the ingest path; what fails stays for the alarm to retry. */
  private deliverOutbox(): Promise<void> {
    this.delivering ??= this.sendOutbox().finally(() => (this.delivering = null));
    return this.delivering;
  }

  private async sendOutbox(): Promise<void> {
    const target = {
      runId: this.store.run()?.id ?? "",
      resolveWait: (stepId: string, index: number, event: StoredEvent) => this.resolveWait(stepId, index, event),
      resolveInvoke: (stepId: string, result: InvokeResult) => this.resolveInvoke(stepId, result),
      cancel: (reason: CancelReason) => void this.cancel(reason),
    };
    try {
      // Entries added while delivering (a cancel's end) are delivered in the same pass.
      for (let next = this.store.nextOutboxEntry(); next; next = this.store.nextOutboxEntry()) {
        await deliverEntry(this.env, target, next.entry);
        this.store.delivered(next.seq);
      }
    } catch (err) {
      const run = this.store.run();
      createLogger({ run_id: run?.id ?? null, function_id: run?.functionId ?? null }).warn("could not deliver the run's events; will retry", { error: String(err) });
      await this.rearm();
    }
  }

  /** Tells the D1 runs index the run's end, through the queue (batched by the consumer). */
  private async deliverEnd(run: RunRecord): Promise<void> {
    try {
      await this.env.EVENTS.send(
        { type: "run-ended", runId: run.id, functionId: run.functionId, eventId: run.events[0]?.id ?? "", status: run.status, startedAt: run.startedAt, endedAt: run.endedAt ?? Date.now() },
        { contentType: "json" },
      );
      this.endDelivered = true;
    } catch (err) {
      createLogger({ run_id: run.id, function_id: run.functionId }).warn("could not queue the run's end for the runs index; will retry", { error: String(err) });
    }
  }

  /**
   * Sets the alarm to the earliest thing the object must do: deliver what is undelivered, wake
   * the run when it is due (or watch an invocation in progress), or delete the run after retention.
   */
  private async rearm(): Promise<void> {
    const run = this.store.run();
    if (!run) return;
    const now = Date.now();
    const times: number[] = [];
    if (this.store.nextOutboxEntry()) times.push(now + DELIVERY_RETRY_MS);
    if (FINAL_STATUSES.has(run.status)) times.push(this.endDelivered ? (run.endedAt ?? now) + retentionDays(this.env) * DAY_MS : now + DELIVERY_RETRY_MS);
    else if (run.isOpen) times.push(now + WATCHDOG_MS);
    else times.push(run.wakeAt ?? now);
    if (!FINAL_STATUSES.has(run.status) && run.finishBy !== undefined) times.push(run.finishBy);
    await this.ctx.storage.setAlarm(Math.min(...times));
  }
}

/** Events a step sends are validated like the event API's; bad ones fail the step for good. */
function prepareStepEvents(events: unknown[], idAt: (position: number) => string): StoredEvent[] {
  if (events.length === 0) return [];
  try {
    return parseEvents(events, idAt);
  } catch (err) {
    throw new NonRetriableError(`step.sendEvent: ${serializeError(err).message}`);
  }
}
