import type { HandlerFailures, RunOutcome } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { CancelReason } from "../../sdk/function.ts";
import type { Logger, SerializedError } from "../../sdk/types.ts";
import type { Env } from "../platform/env.ts";
import { findFunction } from "../platform/registry.ts";
import { FINAL_STATUSES, type RunStatus } from "../platform/types.ts";
import { traceExport } from "../traces/config.ts";
import type { CancellationRef, RunDelivery } from "./delivery.ts";
import { endEventsWithinLimit } from "./depth.ts";
import { endEntries, failureEvents, finishedEvents } from "./outbox.ts";
import type { RunRecord, RunStore } from "./RunStore.ts";

// What an invocation's outcome writes: the run suspended until it is due again, or ended (completed,
// failed, cancelled) with what its end sends in the same commit; and the row in the runs index of a
// run still open, which meets the bulk cancellations made while the index did not show it, as a
// suspension does. The RunObject keeps one-line methods over these.

/** What recording a run's outcome needs of its RunObject. */
export interface RunEndContext {
  env: Env;
  store: RunStore;
  delivery: RunDelivery;
  /** Sets the alarm to the earliest thing the object must do (runs/alarm.ts). */
  rearm(): Promise<void>;
  /** Makes sure an alarm comes within WATCHDOG_MS, keeping one already due by then (a set alarm is a row written). */
  armSoon(): Promise<void>;
  /** Cancels the run if it has not ended and its trigger satisfies `expression`; answers whether it did. */
  cancelIf(reason: CancelReason, expression?: string): Promise<boolean>;
  /** When the run is due after an invocation that asked for `wakeAt`: sooner if a wait was resolved meanwhile. */
  dueAt(wakeAt: number): number;
}

/**
 * Records what an invocation came to, unless the run ended meanwhile (a cancel came first).
 *
 * @example
 * await recordOutcome(ctx, run, outcome, logger);
 */
export async function recordOutcome(ctx: RunEndContext, run: RunRecord, outcome: RunOutcome, logger: Logger): Promise<void> {
  if (FINAL_STATUSES.has(ctx.store.run()?.status ?? "Running")) return;
  switch (outcome.type) {
    case "completed":
      return finishRun(ctx, run, "Completed", { output: outcome.output });
    case "failed":
      return failRun(ctx, run, outcome.error);
    case "suspended":
      return suspendRun(ctx, outcome.wakeAt, run.handlerFailures);
    case "retry":
      logger.warn("handler failed; retrying", { attempt: outcome.handlerFailures.count - 1, error: outcome.error.message, ...(outcome.error.stack ? { stack: outcome.error.stack } : {}) });
      return suspendRun(ctx, outcome.wakeAt, outcome.handlerFailures);
    case "cancelled":
      return;
  }
}

/**
 * The invocation ended with the run waiting: a run that waits is worth its row in the runs index,
 * written first if it has none yet (noted in the same commit as the suspension).
 */
async function suspendRun(ctx: RunEndContext, wakeAt: number, handlerFailures: HandlerFailures): Promise<void> {
  const { indexedOn, cancellations } = await ctx.delivery.indexOpen(ctx.store.run()!);
  // A cancel that came meanwhile ended the run.
  if (FINAL_STATUSES.has(ctx.store.run()?.status ?? "Running")) return;
  ctx.store.suspend(ctx.dueAt(wakeAt), handlerFailures, indexedOn);
  if (await meetCancellations(ctx, cancellations)) return;
  return ctx.rearm();
}

/**
 * Lists a run not over yet in the runs index, if it is not: it queues for a slot or its turn, or runs a while.
 *
 * @example
 * await listOpenRun(ctx);
 */
export async function listOpenRun(ctx: RunEndContext): Promise<void> {
  const run = ctx.store.run();
  if (!run || run.indexedOn !== null || FINAL_STATUSES.has(run.status)) return;
  const { indexedOn, cancellations } = await ctx.delivery.indexOpen(run);
  if (indexedOn !== null) ctx.store.markIndexed(indexedOn);
  await meetCancellations(ctx, cancellations);
}

/** Cancels the run by the first bulk cancellation, made while the index did not show it, whose `if` its trigger meets. */
async function meetCancellations(ctx: RunEndContext, cancellations: CancellationRef[]): Promise<boolean> {
  for (const { id, expression } of cancellations) {
    if (await ctx.cancelIf({ type: "bulk", cancellation_id: id }, expression ?? undefined)) return true;
  }
  return false;
}

/**
 * Fails the run for good. Its failure event (which starts `onFailure`) goes to the outbox in the
 * commit that ends the run, so an outage delays it and loses nothing, and a cancel that came
 * first leaves no failure event at all.
 *
 * @example
 * await failRun(ctx, run, serializeError(new NonRetriableError("gave up")));
 */
export function failRun(ctx: RunEndContext, run: RunRecord, error: SerializedError): Promise<void> {
  return finishRun(ctx, run, "Failed", { error }, failureEvents(run, error));
}

/**
 * Ends the run: status, result and the events its end sends in one commit (whatever ended the
 * run first wins, and nothing replaces it), then delivers them and tells the runs index.
 *
 * @example
 * await finishRun(ctx, run, "Cancelled", {}, cancellationEvents(run, reason));
 */
export async function finishRun(ctx: RunEndContext, run: RunRecord, status: RunStatus, result: { output?: unknown; error?: SerializedError }, events: StoredEvent[] = []): Promise<void> {
  if (FINAL_STATUSES.has(ctx.store.run()?.status ?? "Running")) return;
  const fn = findFunction(run.functionId);
  const waits = (fn?.cancelOn.length ?? 0) > 0 || [...ctx.store.steps().values()].some((step) => step.kind === "waitForEvent");
  // In the end's own commit, so a kill right after it still gives them back; while an invocation
  // holds the slots (a step body may still run), the give-back waits for its release.
  const flow = fn?.flow.concurrency !== undefined || fn?.flow.throttle !== undefined;
  // The run's trace, last: built from the run's records when it is sent (worker/traces/), only where an OTLP endpoint is set.
  const trace = traceExport(ctx.env) ? [{ kind: "trace" as const }] : [];
  const entries = [{ kind: "events" as const, events: endEventsWithinLimit(ctx.env, run, [...events, ...finishedEvents(run, status, result)]) }, ...endEntries(run, status, result, { waits, flow }), ...trace];
  ctx.store.end(status, Date.now(), result, entries);
  ctx.delivery.endDelivered = false;
  // Should the runtime die before the end is delivered, an alarm soon delivers it: the invocation's
  // watchdog, when it has one, already does.
  await ctx.armSoon();
  await ctx.delivery.deliverOutbox();
  await ctx.delivery.deliverEnd(ctx.store.run() ?? run);
  await ctx.rearm();
  // Not awaited: a collector that is slow or down never holds the run's end back (the alarm retries it).
  if (trace.length > 0) void ctx.delivery.exportTrace();
}
