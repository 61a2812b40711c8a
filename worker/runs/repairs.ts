import type { CancelReason, StepflareFunction } from "../../sdk/function.ts";
import { FINAL_STATUSES, type RunStatus } from "../platform/types.ts";
import { retriesToBringForward, runFacts, type RunFacts } from "./health.ts";
import type { RunStore } from "./RunStore.ts";

// What a run's object does for the tick's stuck check (admin/stuck.ts): the facts it reports, and the
// repairs an operator makes to a run that nothing moves. The RunObject's public methods delegate here;
// the pure parts (the facts, a repair as the record keeps it) are in health.ts.

/** What the stuck check and the repairs need of their RunObject. */
export interface RepairContext {
  store: RunStore;
  /** The run's function; throws when the registry cannot be read. */
  functionOf(id: string): Promise<StepflareFunction | undefined>;
  /** When the object's alarm fires; null when it has none. */
  alarmAt(): Promise<number | null>;
  setAlarm(at: number): Promise<void>;
  /** An invocation is running in the object's memory now. */
  isInvoking(): boolean;
  /** Starts an invocation, unless one is running. */
  execute(): void;
  cancel(reason: CancelReason): Promise<unknown>;
}

/**
 * The run's facts for the tick's stuck check (admin/stuck.ts): its alarm, its wake time, whether
 * its function is registered, since when a step retries. Changes nothing; null if no run.
 *
 * @example
 * const facts = await inspectRun(ctx);
 */
export async function inspectRun(ctx: RepairContext): Promise<RunFacts | null> {
  const run = ctx.store.run();
  if (!run) return null;
  if (FINAL_STATUSES.has(run.status)) return runFacts(run, [], { alarmAt: null, invoking: false });
  // A registry that cannot be read (D1 down) says nothing about the function.
  const fn = await ctx.functionOf(run.functionId).then((found) => found ?? null, () => undefined);
  const live = { alarmAt: await ctx.alarmAt(), invoking: ctx.isInvoking(), flowControlled: fn?.flow.concurrency !== undefined || fn?.flow.throttle !== undefined };
  return runFacts(run, ctx.store.steps().values(), fn === undefined ? live : { ...live, functionRegistered: fn !== null });
}

/**
 * Makes the run due now (a repair): its wake time and any retry's backoff are brought forward,
 * its alarm set, an invocation started. Sleeps and waits keep their times. Idempotent; a run that
 * has ended stays as it is. Answers the run's status.
 *
 * @example
 * await wakeRun(ctx, "ops@example.com");
 */
export async function wakeRun(ctx: RepairContext, by?: string): Promise<RunStatus | null> {
  const run = ctx.store.run();
  if (!run || FINAL_STATUSES.has(run.status)) return run?.status ?? null;
  const now = Date.now();
  for (const step of retriesToBringForward(ctx.store.steps().values(), now)) ctx.store.saveStep(step);
  ctx.store.recordRepair({ action: "wake", at: now, ...(by ? { detail: by } : {}) });
  if (!run.isOpen) ctx.store.wakeAt(Math.min(run.wakeAt ?? now, now));
  await ctx.setAlarm(now);
  ctx.execute();
  return run.status;
}

/**
 * Points the run at another function (a deploy renamed its own), then wakes it. The caller
 * checked that `functionId` is registered; pointed where it points already, it is woken. Answers
 * its status and whether it now runs as `functionId` (a run that had ended is left as it was).
 *
 * @example
 * await repointRun(ctx, "app-send-invoice"); // { status: "Running", repointed: true }
 */
export async function repointRun(ctx: RepairContext, functionId: string): Promise<{ status: RunStatus; repointed: boolean } | null> {
  const run = ctx.store.run();
  if (!run) return null;
  if (FINAL_STATUSES.has(run.status)) return { status: run.status, repointed: false };
  // Pointed where it points already: what the operator wants is the run moving, as a wake does.
  if (run.functionId !== functionId) ctx.store.recordRepair({ action: "repoint", at: Date.now(), detail: `${run.functionId} → ${functionId}` }, functionId);
  return { status: (await wakeRun(ctx))!, repointed: true };
}

/**
 * Cancels the run as a repair (recorded on its timeline); a run that has ended stays as it is.
 *
 * @example
 * await cancelAsRepair(ctx, newRunId); // cancelled because it was re-run as `newRunId`
 */
export async function cancelAsRepair(ctx: RepairContext, rerunAs?: string): Promise<RunStatus | null> {
  const run = ctx.store.run();
  if (!run || FINAL_STATUSES.has(run.status)) return run?.status ?? null;
  ctx.store.recordRepair(rerunAs ? { action: "rerun", at: Date.now(), detail: rerunAs } : { action: "cancel", at: Date.now() });
  await ctx.cancel({ type: "api" });
  return ctx.store.run()?.status ?? null;
}
