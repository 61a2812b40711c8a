import { DurableObject } from "cloudflare:workers";
import { systemClock } from "../../sdk/clock.ts";
import { executeRun, type RunHost, type RunOutcome, type StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import { FUNCTION_FAILED_EVENT } from "../../sdk/function.ts";
import { NonRetriableError } from "../../sdk/errors/NonRetriableError.ts";
import { highestSeq } from "../../sdk/replay.ts";
import { serializeError, type Logger, type SerializedError } from "../../sdk/types.ts";
import { instrument } from "../bindings.ts";
import { retentionDays, type Env } from "../env.ts";
import { runAsObject } from "../faults.ts";
import { ingestEvents, parseEvents } from "../ingest.ts";
import { createLogger } from "../logger.ts";
import { FINAL_STATUSES, type RunStatus } from "../messages.ts";
import { findFunction } from "../registry.ts";
import { isDevMode } from "../routes/auth.ts";
import { usage } from "../usage.ts";
import { RunStore, type RunRecord } from "./RunStore.ts";

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
}

/**
 * One function run (DESIGN "A run"): its record and steps in this object's SQLite, the handler
 * executed here through the SDK's driver, and every timer (start, sleep, retry, watchdog, delivery,
 * retention) on the alarm.
 */
export class RunObject extends DurableObject<Env> {
  private readonly store: RunStore;
  /** The invocation in progress, so nothing starts a second one beside it. */
  private executing: Promise<void> | null = null;
  /** The outbox delivery in progress, so two never send the same entry at once. */
  private delivering: Promise<void> | null = null;
  /** Invocations in a row that broke outside the handler. */
  private failedInvocations = 0;
  /** The run's end reached the runs index (in memory: after a restart the alarm sends it again, harmlessly). */
  private endDelivered = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, instrument(env));
    this.store = new RunStore(ctx.storage.sql);
  }

  /**
   * Stores the run (once: a repeated start changes nothing) and starts it, or arms the alarm for a
   * delayed start. Returns as soon as the run is stored, not when it ends.
   */
  async start(init: RunInit): Promise<RunStatus> {
    const existing = this.store.run();
    if (existing) return existing.status;
    const now = Date.now();
    const delayed = init.startAt > now;
    this.store.createRun({ id: init.runId, functionId: init.functionId, events: init.events, startedAt: now, ...(delayed ? { wakeAt: init.startAt } : {}) });
    await this.ctx.storage.setAlarm(delayed ? init.startAt : now + WATCHDOG_MS);
    if (!delayed) void this.execute(true);
    return delayed ? "Queued" : "Running";
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

  /** Cancels the run: it stops at its next step boundary and a running step's result is discarded. */
  async cancel(): Promise<RunWithSteps | null> {
    const run = this.store.run();
    if (!run) return null;
    await this.finish(run, "Cancelled", {});
    return this.getRun();
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
    // Woken early (a watchdog, a delivery retry, the tick): a stored wake or retry time stands.
    if (!run.isOpen && run.wakeAt !== undefined && run.wakeAt > now) return this.rearm();
    const logger = createLogger({ run_id: run.id, function_id: run.functionId });
    const fn = findFunction(run.functionId);
    if (!fn) return this.fail(run, serializeError(new NonRetriableError(`function "${run.functionId}" is not registered in this Worker`)));

    // An invocation that began and never ended died with the runtime (nothing runs it in memory).
    const recovering = !isFirst && run.isOpen;
    if (!isFirst) {
      run = this.store.beginInvocation({ at: now, seq: highestSeq(this.store.steps().values()) }, recovering);
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
        this.store.saveStep(step, events);
        if (events?.length) void this.deliverOutbox();
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
    };
    const execute = () => executeRun(fn.handler, input, host);
    const outcome = await (isDevMode(this.env) ? runAsObject((reason) => this.ctx.abort(reason), execute) : execute());
    await this.record(run, outcome, logger);
  }

  private async record(run: RunRecord, outcome: RunOutcome, logger: Logger): Promise<void> {
    if (FINAL_STATUSES.has(this.store.run()?.status ?? "Running")) return;
    switch (outcome.type) {
      case "completed":
        return this.finish(run, "Completed", { output: outcome.output });
      case "failed":
        return this.fail(run, outcome.error);
      case "suspended":
        this.store.suspend(outcome.wakeAt, run.handlerFailures);
        return this.rearm();
      case "retry":
        logger.warn("handler failed; retrying", { attempt: outcome.handlerFailures.count - 1, error: outcome.error.message });
        this.store.suspend(outcome.wakeAt, outcome.handlerFailures);
        return this.rearm();
      case "cancelled":
        return;
    }
  }

  /**
   * Fails the run for good. Its failure event (which starts `onFailure`) goes to the outbox in the
   * commit that ends the run, so an outage delays it and loses nothing, and a cancel that came
   * first leaves no failure event at all.
   */
  private fail(run: RunRecord, error: SerializedError): Promise<void> {
    // A run started by a failure event sends none of its own: a failure handler that fails must
    // not trigger itself again.
    const events: StoredEvent[] =
      run.events[0]?.name === FUNCTION_FAILED_EVENT
        ? []
        : [{ id: `${run.id}-failed`, name: FUNCTION_FAILED_EVENT, data: { function_id: run.functionId, run_id: run.id, error, event: run.events[0] }, ts: Date.now() }];
    return this.finish(run, "Failed", { error }, events);
  }

  /**
   * Ends the run: status, result and the events its end sends in one commit (whatever ended the
   * run first wins, and nothing replaces it), then delivers them and tells the runs index.
   */
  private async finish(run: RunRecord, status: RunStatus, result: { output?: unknown; error?: SerializedError }, events: StoredEvent[] = []): Promise<void> {
    if (FINAL_STATUSES.has(this.store.run()?.status ?? "Running")) return;
    this.store.end(status, Date.now(), result, events);
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
    try {
      for (const entry of this.store.outbox()) {
        await ingestEvents(this.env, entry.events);
        this.store.delivered(entry.seq);
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
    if (this.store.hasOutbox()) times.push(now + DELIVERY_RETRY_MS);
    if (FINAL_STATUSES.has(run.status)) times.push(this.endDelivered ? (run.endedAt ?? now) + retentionDays(this.env) * DAY_MS : now + DELIVERY_RETRY_MS);
    else if (run.isOpen) times.push(now + WATCHDOG_MS);
    else times.push(run.wakeAt ?? now);
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
