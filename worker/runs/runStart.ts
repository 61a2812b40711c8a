import type { CancelReason, StepflareFunction } from "../../sdk/function.ts";
import type { RunStatus } from "../platform/types.ts";
import type { RunDelivery } from "./delivery.ts";
import { WATCHDOG_MS } from "./invocation.ts";
import { cancelOnEntries } from "./outbox.ts";
import type { RunInit } from "./records.ts";
import type { RunStore } from "./RunStore.ts";

// The object's side of a run's start: the run stored once, listed if it is due later, and its first
// invocation begun or its alarm armed. door.ts is the caller's side (which object, with what).

/** What a run's start needs of its RunObject. */
export interface RunStartContext {
  store: RunStore;
  delivery: RunDelivery;
  /** The run's function, or undefined if no Worker or app registers it. */
  functionOf(id: string): Promise<StepflareFunction | undefined>;
  setAlarm(at: number): Promise<void>;
  /** Starts an invocation, unless one is running; `isFirst` for the one a start begins with its run. */
  execute(isFirst: boolean): Promise<void>;
  cancel(reason: CancelReason): Promise<unknown>;
}

/**
 * Stores the run (once: a repeated start changes nothing) and starts it, or arms the alarm for a
 * delayed start. Returns as soon as the run is stored, not when it ends.
 *
 * @example
 * const status = await storeAndStart(ctx, init);
 */
export async function storeAndStart(ctx: RunStartContext, init: RunInit): Promise<RunStatus> {
  const existing = ctx.store.run();
  if (existing) return existing.status;
  const now = Date.now();
  const fn = await ctx.functionOf(init.functionId);
  // A run under a throttle or a concurrency limit starts as a delayed one does: its first invocation asks for its start or a slot.
  // So is a re-run that reuses steps: its first invocation begins after them, as a replay does.
  const delayed = init.startAt > now || fn?.flow.concurrency !== undefined || fn?.flow.throttle !== undefined || (init.memo?.length ?? 0) > 0;
  const finishAfter = fn?.timeouts.finish;
  const listed = { id: init.runId, functionId: init.functionId, events: init.events, status: "Queued" as const, startedAt: now, listedAt: init.listedAt ?? now, ...(init.parent ? { parent: init.parent } : {}), indexedOn: null };
  // A run due later is listed now, as Queued; one that starts now writes its row when it is worth one (RunDelivery.indexOpen).
  const indexedOn = init.startAt > now ? (await ctx.delivery.indexOpen(listed)).indexedOn : null;
  // A start repeated while that write was under way found no run either: the first one stored it.
  if (ctx.store.run()) return ctx.store.run()!.status;
  ctx.store.createRun(
    {
      id: init.runId,
      functionId: init.functionId,
      events: init.events,
      startedAt: now,
      listedAt: listed.listedAt,
      indexedOn,
      ...(delayed ? { wakeAt: init.startAt } : {}),
      ...(init.parent ? { parent: init.parent } : {}),
      ...(!delayed && finishAfter !== undefined ? { finishBy: now + finishAfter } : {}),
    },
    fn ? cancelOnEntries(fn, init.runId, init.events[0]!, Math.min(init.receivedAt ?? now, now)) : [],
  );
  for (const step of init.memo ?? []) ctx.store.saveStep(step);
  await ctx.setAlarm(delayed ? init.startAt : now + WATCHDOG_MS);
  if (fn?.cancelOn.length) void ctx.delivery.deliverOutbox();
  if (init.startAt <= now && delayed) void ctx.execute(false);
  if (delayed) return "Queued";
  // Not started within `timeouts.start` of when it was due (dispatch came late): cancelled, never run.
  if (fn?.timeouts.start !== undefined && now > init.startAt + fn.timeouts.start) {
    await ctx.cancel({ type: "timeout", timeout: "start" });
    return "Cancelled";
  }
  void ctx.execute(true);
  return "Running";
}
