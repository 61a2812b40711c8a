import { DurableObject } from "cloudflare:workers";
import { executeRun, type RunHost, type RunOutcome, type StepRecord } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import { FUNCTION_FAILED_EVENT } from "../../sdk/function.ts";
import { NonRetriableError } from "../../sdk/errors/NonRetriableError.ts";
import { serializeError, type SerializedError } from "../../sdk/types.ts";
import type { Env } from "../env.ts";
import { ingestEvents, parseEvents } from "../ingest.ts";
import { createLogger } from "../logger.ts";
import { FINAL_STATUSES, type RunStatus } from "../messages.ts";
import { findFunction } from "../registry.ts";
import { usage } from "../usage.ts";
import { RunStore, type RunRecord } from "./RunStore.ts";
import { toRunView, type RunView } from "./runView.ts";

/**
 * A run started by start() executes outside any alarm, so its alarm stands this far ahead as a
 * watchdog: if the runtime dies mid-run, the alarm fires after restart and the run resumes from its
 * stored steps. A run woken by its alarm needs none: the runtime retries an alarm whose handler
 * did not finish.
 */
const WATCHDOG_MS = 10_000;
/** Invocations in a row that may break outside the handler before the run fails for good. */
const MAX_FAILED_INVOCATIONS = 5;

export interface RunInit {
  runId: string;
  functionId: string;
  events: StoredEvent[];
  /** Epoch ms to start at: now, or an event's future `ts` (a delayed run). */
  startAt: number;
}

/**
 * One function run (DESIGN "A run"): its record and steps in this object's SQLite, the handler
 * executed here through the SDK's driver, and every timer (start, sleep, retry, watchdog) on the alarm.
 */
export class RunObject extends DurableObject<Env> {
  private readonly store: RunStore;
  /** The invocation in progress, so an alarm never starts a second one beside it. */
  private executing: Promise<void> | null = null;
  /** Invocations in a row that broke outside the handler. */
  private failedInvocations = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new RunStore(ctx.storage.sql);
  }

  /**
   * Stores the run (once: a repeated start changes nothing) and starts it, or arms the alarm for a
   * delayed start. Returns as soon as the run is stored, not when it ends.
   */
  async start(init: RunInit): Promise<RunStatus> {
    usage.doRequests++;
    const existing = this.store.run();
    if (existing) return existing.status;
    const now = Date.now();
    const delayed = init.startAt > now;
    this.store.createRun({ id: init.runId, functionId: init.functionId, events: init.events, status: delayed ? "Queued" : "Running", startedAt: now });
    if (delayed) {
      await this.ctx.storage.setAlarm(init.startAt);
    } else {
      await this.ctx.storage.setAlarm(now + WATCHDOG_MS);
      void this.execute();
    }
    return delayed ? "Queued" : "Running";
  }

  override async alarm(): Promise<void> {
    usage.doRequests++;
    // An invocation in progress finishes first (and records its own next timer); invoking again
    // after it is at worst a replay of memoized steps, never a second run of a step.
    if (this.executing) await this.executing;
    await this.execute();
  }

  /** The run with its steps, as the REST API shows it; null if this object holds no run. */
  async getRun(): Promise<RunView | null> {
    usage.doRequests++;
    const run = this.store.run();
    return run ? toRunView(run, [...this.store.steps().values()]) : null;
  }

  /** The run's status and end time, for the tick's repair of the runs index; null if no run. */
  async status(): Promise<{ status: RunStatus; endedAt?: number } | null> {
    usage.doRequests++;
    const run = this.store.run();
    return run ? { status: run.status, ...(run.endedAt ? { endedAt: run.endedAt } : {}) } : null;
  }

  /** Cancels the run: it stops at its next step boundary and a running step's result is discarded. */
  async cancel(): Promise<RunView | null> {
    usage.doRequests++;
    const run = this.store.run();
    if (!run) return null;
    if (!FINAL_STATUSES.has(run.status)) await this.finish(run, "Cancelled", {});
    return this.getRun();
  }

  private execute(): Promise<void> {
    this.executing ??= this.invoke()
      .then(() => {
        this.failedInvocations = 0;
      })
      .catch((err: unknown) => this.invocationFailed(err))
      .finally(() => (this.executing = null));
    return this.executing;
  }

  /**
   * An invocation that broke outside the handler (storage or D1 failing, say) is retried by the
   * alarm; one that keeps breaking fails the run, so that every run reaches a final state.
   */
  private async invocationFailed(err: unknown): Promise<void> {
    this.failedInvocations++;
    const run = this.store.run();
    console.error(JSON.stringify({ level: "error", message: "run invocation failed", run_id: run?.id, failures: this.failedInvocations, error: String(err) }));
    if (run && !FINAL_STATUSES.has(run.status) && this.failedInvocations >= MAX_FAILED_INVOCATIONS) {
      const error = serializeError(new NonRetriableError(`the run could not record its progress ${MAX_FAILED_INVOCATIONS} times in a row: ${serializeError(err).message}`));
      this.store.end("Failed", Date.now(), { error });
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Date.now() + WATCHDOG_MS);
  }

  /** Runs the handler once against the stored steps and records what came of it. */
  private async invoke(): Promise<void> {
    const run = this.store.run();
    if (!run || FINAL_STATUSES.has(run.status)) return;
    const logger = createLogger({ run_id: run.id, function_id: run.functionId });
    const fn = findFunction(run.functionId);
    if (!fn) {
      const error = serializeError(new NonRetriableError(`function "${run.functionId}" is not registered in this Worker`));
      return this.fail(run, error);
    }
    if (run.status === "Queued") this.store.setStatus("Running");

    const host: RunHost = {
      steps: this.store.steps(),
      saveStep: (step: StepRecord) => this.store.saveStep(step),
      sendEvents: (events) => ingestEvents(this.env, parseStepEvents(events)),
      isCancelled: () => this.store.run()?.status === "Cancelled",
      now: Date.now,
    };
    const outcome = await executeRun(fn.handler, { runId: run.id, events: run.events, handlerAttempt: run.attempt, retries: fn.retries, stepTimeoutMs: fn.stepTimeoutMs, logger }, host);
    await this.record(run, outcome, logger);
  }

  private async record(run: RunRecord, outcome: RunOutcome, logger: ReturnType<typeof createLogger>): Promise<void> {
    if (this.store.run()?.status === "Cancelled") return;
    switch (outcome.type) {
      case "completed":
        return this.finish(run, "Completed", { output: outcome.output });
      case "failed":
        return this.fail(run, outcome.error);
      case "suspended":
        await this.ctx.storage.setAlarm(outcome.wakeAt);
        return;
      case "retry":
        logger.warn("handler failed; retrying", { attempt: run.attempt, error: outcome.error.message });
        this.store.setAttempt(run.attempt + 1);
        await this.ctx.storage.setAlarm(outcome.wakeAt);
        return;
      case "cancelled":
        return;
    }
  }

  /**
   * Fails the run for good. The failure event goes through the durable ingest path first, so
   * `onFailure` is never lost: if sending it throws, the watchdog alarm retries this.
   */
  private async fail(run: RunRecord, error: SerializedError): Promise<void> {
    // A run started by a failure event sends none of its own: a failure handler that fails must
    // not trigger itself again.
    if (run.events[0]?.name !== FUNCTION_FAILED_EVENT) {
      await ingestEvents(this.env, [
        {
          id: `${run.id}-failed`,
          name: FUNCTION_FAILED_EVENT,
          data: { function_id: run.functionId, run_id: run.id, error, event: run.events[0] },
          ts: Date.now(),
        },
      ]);
    }
    await this.finish(run, "Failed", { error });
  }

  /**
   * Stores the final status, then clears the alarm (in this order: a crash in between leaves an
   * alarm that finds the run ended), and tells the D1 runs index through the queue (batched there).
   */
  private async finish(run: RunRecord, status: RunStatus, result: { output?: unknown; error?: SerializedError }): Promise<void> {
    // Whatever ended first wins: a cancel that arrived while the failure event was being sent stays.
    if (FINAL_STATUSES.has(this.store.run()?.status ?? "Running")) return;
    const endedAt = Date.now();
    this.store.end(status, endedAt, result);
    await this.ctx.storage.deleteAlarm();
    usage.queueMessages++;
    try {
      await this.env.EVENTS.send(
        { type: "run-ended", runId: run.id, functionId: run.functionId, eventId: run.events[0]?.id ?? "", status, startedAt: run.startedAt, endedAt },
        { contentType: "json" },
      );
    } catch (err) {
      // The index is only an index: the API reads a run's status from here.
      console.error(JSON.stringify({ level: "error", message: "could not queue the run's end for the runs index", run_id: run.id, error: String(err) }));
    }
  }
}

/** Events a step sends are validated like the event API's; bad ones fail the step for good. */
function parseStepEvents(events: unknown[]): StoredEvent[] {
  try {
    return parseEvents(events);
  } catch (err) {
    throw new NonRetriableError(`step.sendEvent: ${serializeError(err).message}`);
  }
}
