import { engineEventId, type StoredEvent } from "../../sdk/event.ts";
import { FUNCTION_CANCELLED_EVENT, FUNCTION_FAILED_EVENT, FUNCTION_FINISHED_EVENT, type CancelReason, type StepflareFunction } from "../../sdk/function.ts";
import type { StepRecord } from "../../sdk/run.ts";
import type { SerializedError } from "../../sdk/types.ts";
import type { InvokeResult } from "../../sdk/wait.ts";
import type { WaitRow } from "../db/waits.ts";
import type { Env } from "../platform/env.ts";
import { ingestEvents } from "../ingest/ingest.ts";
import { startInvokedRun } from "./invoke.ts";
import { chainRefusal, runDepth } from "./depth.ts";
import { FunctionPausedError, runObject } from "./door.ts";
import { allFunctions, findFunction } from "../platform/registry.ts";
import { loadRemoteFunctions } from "../remote/apps.ts";
import type { RunStatus } from "../platform/types.ts";
import { clearRunWaits, deleteWaitsWrites, registerWaits, waitRows } from "./waits.ts";
import type { OutboxEntry, RunRecord } from "./RunStore.ts";

// What leaves a run (DESIGN "An outbox for everything that leaves a run"): the entries a run's
// start, steps and end write to its outbox, and how each is delivered.

/** How long a cancelOn entry without a timeout stays in the waits index: until the run ends, at most this. */
const CANCEL_ON_MAX_MS = 366 * 24 * 60 * 60 * 1000;

/**
 * The waits index rows of a function's cancelOn entries, registered when its run is created. They
 * listen from the trigger's receipt (as Inngest's do), not from the run's creation: an event sent
 * with the trigger, or queued behind it, cancels the run. The trigger itself never does: an entry
 * for the trigger's own name listens from just after it.
 */
export function cancelOnEntries(fn: StepflareFunction, runId: string, trigger: StoredEvent, receivedAt: number): OutboxEntry[] {
  if (fn.cancelOn.length === 0) return [];
  const rows = waitRows("cancel", runId, "", trigger, fn.cancelOn, receivedAt, (i) => receivedAt + (fn.cancelOn[i]!.timeout ?? CANCEL_ON_MAX_MS));
  return [{ kind: "waits", rows: rows.map((row) => (row.event_name === trigger.name ? { ...row, since: receivedAt + 1 } : row)) }];
}

/** What a step's first save as waiting sends: a wait's rows for the waits index, or the child run an invoke starts. */
export function requestEntries(run: RunRecord, step: StepRecord, stored: StepRecord | undefined): OutboxEntry[] {
  const request = step.request;
  if (step.status !== "waiting" || !request || stored?.status === "waiting") return [];
  if (request.type === "invoke") return [{ kind: "invoke", stepId: step.id, functionId: request.functionId, data: request.data }];
  return [{ kind: "waits", rows: waitStepRows(run, step) }];
}

/** The waits index rows of a wait step: one per condition, from its window's start to its timeout. */
export function waitStepRows(run: RunRecord, step: StepRecord): WaitRow[] {
  const request = step.request;
  if (request?.type !== "wait") return [];
  return waitRows("wait", run.id, step.id, run.events[0]!, request.conditions, request.since, () => request.timeoutAt);
}

/**
 * The failure event a failed run sends (it starts `onFailure`). A run started by a failure event
 * sends none: a failure handler that fails must not trigger itself again.
 */
export function failureEvents(run: RunRecord, error: SerializedError): StoredEvent[] {
  if (run.events[0]?.name === FUNCTION_FAILED_EVENT) return [];
  return [{ id: engineEventId(run.id, "failed"), name: FUNCTION_FAILED_EVENT, data: { function_id: run.functionId, run_id: run.id, error, event: run.events[0] }, ts: Date.now() }];
}

/** The `inngest/function.cancelled` event a cancelled run sends (it starts `onCancel`); none from a run it started. */
export function cancellationEvents(run: RunRecord, reason: CancelReason): StoredEvent[] {
  if (run.events[0]?.name === FUNCTION_CANCELLED_EVENT) return [];
  return [{ id: engineEventId(run.id, "cancelled"), name: FUNCTION_CANCELLED_EVENT, data: { function_id: run.functionId, run_id: run.id, event: run.events[0], reason }, ts: Date.now() }];
}

/**
 * The `inngest/function.finished` event of a run's end, with its `result` or `error` (a cancelled
 * run's error says so), as Inngest sends it. Only while a registered function is triggered by it:
 * an event per run is a row per run in the event log, paid for nothing if no one listens. A run
 * started by a finished event sends none, or a listener would trigger itself for ever.
 */
export function finishedEvents(run: RunRecord, status: RunStatus, result: { output?: unknown; error?: SerializedError }): StoredEvent[] {
  if (run.events[0]?.name === FUNCTION_FINISHED_EVENT || !listensForFinished()) return [];
  const outcome = status === "Completed" ? { result: result.output ?? null } : { error: result.error ?? { name: "FunctionCancelledError", message: `run ${run.id} was cancelled` } };
  return [{ id: engineEventId(run.id, "finished"), name: FUNCTION_FINISHED_EVENT, data: { function_id: run.functionId, run_id: run.id, event: run.events[0], events: run.events, ...outcome }, ts: Date.now() }];
}

function listensForFinished(): boolean {
  return allFunctions().some((fn) => fn.triggers.some((trigger) => "event" in trigger && (trigger.event === FUNCTION_FINISHED_EVENT || (trigger.event.endsWith("*") && FUNCTION_FINISHED_EVENT.startsWith(trigger.event.slice(0, -1))))));
}

/**
 * What a run's end sends besides its events: its parent's resumption, the removal of its waits and
 * cancelOn rows, and its slots and places in its flow coordinators' queues given back (DESIGN "A run
 * gives back what it holds, at one place").
 */
export function endEntries(
  run: RunRecord,
  status: RunStatus,
  result: { output?: unknown; error?: SerializedError },
  holds: { waits: boolean; flow: boolean },
): OutboxEntry[] {
  const entries: OutboxEntry[] = [];
  if (run.parent) {
    const error = status === "Cancelled" ? { name: "CancelledError", message: `the invoked run ${run.id} was cancelled` } : result.error;
    entries.push({ kind: "resume-parent", parent: run.parent, result: error ? { error } : { output: result.output ?? null } });
  }
  if (holds.waits) entries.push({ kind: "clear-waits" });
  if (holds.flow) entries.push({ kind: "release-flow" });
  return entries;
}

/** What delivering an entry may do to the run that sent it. */
export interface OutboxRun {
  runId: string;
  functionId: string;
  /** The events that started the run: its depth in a chain of events (runs/depth.ts). */
  events: readonly StoredEvent[];
  /** An event the waits index already held resolves a wait step of this run. */
  resolveWait(stepId: string, index: number, event: StoredEvent): Promise<unknown>;
  /** An invoke step of this run ends without a child (the function is not registered). */
  resolveInvoke(stepId: string, result: InvokeResult): Promise<unknown>;
  /** An event the waits index already held cancels this run (cancelOn). */
  cancel(reason: CancelReason): void;
  /** Gives back the run's concurrency slots and its places in its coordinators' queues (it ended). */
  releaseFlow(): Promise<unknown>;
}

/**
 * Delivers one outbox entry; throws if D1, the queue or another object did not take it, and the
 * entry stays for the next try. Every delivery is idempotent: events carry fixed ids (in the space
 * senders may not use, sdk/event.ts's RESERVED_ID_PREFIX, so none was claimed first), wait rows
 * fixed keys, a child run a derived id, and a parent ignores a second resumption.
 */
export async function deliverEntry(env: Env, run: OutboxRun, entry: OutboxEntry): Promise<void> {
  switch (entry.kind) {
    case "events":
      await ingestEvents(env, entry.events);
      return;
    case "waits": {
      const matches = await registerWaits(env, entry.rows);
      for (const { row, accepted } of matches) {
        if (row.kind === "wait") await run.resolveWait(row.step_id, row.idx, accepted.event);
        // Not awaited: the cancel ends the run through this same outbox.
        else run.cancel({ type: "event", event: accepted.event });
      }
      if (matches.length > 0) await (await deleteWaitsWrites(env, matches.map((match) => match.row))).write(env);
      return;
    }
    case "release-flow":
      await run.releaseFlow();
      return;
    case "clear-waits":
      await clearRunWaits(env, run.runId);
      return;
    case "invoke": {
      // A synced app's function this isolate does not know yet: read the apps again first.
      if (!findFunction(entry.functionId)) await loadRemoteFunctions(env, { force: true, required: true });
      const fn = findFunction(entry.functionId);
      if (!fn) {
        // Inngest's name and words (its executor's "could not find function with ID"); the step fails for good all the same.
        const error = { name: "Error", message: `could not find function with ID: ${entry.functionId}` };
        await run.resolveInvoke(entry.stepId, { error });
        return;
      }
      // A child is one level deeper in the chain than its parent: past the limit, the invoke fails for good.
      const tooDeep = chainRefusal(env, { id: run.runId, functionId: run.functionId, events: run.events });
      if (tooDeep) return void (await run.resolveInvoke(entry.stepId, { error: { name: "NonRetriableError", message: `step.invoke: ${tooDeep}` } }));
      try {
        await startInvokedRun(env, fn, entry.data, { runId: run.runId, stepId: entry.stepId }, runDepth(run.events) + 1);
      } catch (err) {
        // A paused function starts no child: the invoke fails at once, and the parent may catch it.
        if (!(err instanceof FunctionPausedError)) throw err;
        await run.resolveInvoke(entry.stepId, { error: { name: "NonRetriableError", message: `step.invoke: ${err.message}` } });
      }
      return;
    }
    case "resume-parent":
      await runObject(env, entry.parent.runId).resolveInvoke(entry.parent.stepId, entry.result);
      return;
    case "trace":
      throw new Error("a run's trace is sent apart from the other entries (RunDelivery.exportTrace)");
  }
}
