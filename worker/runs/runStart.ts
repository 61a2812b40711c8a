import type { CancelReason, StepflareFunction } from "../../sdk/function.ts";
import { FINAL_STATUSES, type RunStatus } from "../platform/types.ts";
import type { RunDelivery } from "./delivery.ts";
import { WATCHDOG_MS } from "./invocation.ts";
import { cancelOnEntries } from "./outbox.ts";
import type { RunInit } from "./records.ts";
import type { RunStore } from "./RunStore.ts";

// The object's side of a run's start: the run stored once, listed if it is due later, and its first
// invocation begun or its alarm armed. door.ts is the caller's side (which object, with what).

/**
 * How long a start its caller repeats until it answers (an event's dispatch) waits for the run's
 * first invocation before it arms the watchdog: a run that ends within it sets no alarm but its end's.
 * A run still running then is one the runs index lists as running anyway (LIST_AFTER_MS).
 */
export const FIRST_INVOCATION_WAIT_MS = 1_000;

/** What a run's start needs of its RunObject. */
export interface RunStartContext {
  store: RunStore;
  delivery: RunDelivery;
  /** The run's function, or undefined if no Worker or app registers it. */
  functionOf(id: string): Promise<StepflareFunction | undefined>;
  setAlarm(at: number): Promise<void>;
  /** Starts an invocation, unless one is running; `isFirst` for the one a start begins with its run. */
  execute(isFirst: boolean): Promise<void>;
  /** The invocation running in this isolate, if one is. */
  invoking(): Promise<void> | null;
  /** When the object's alarm is due; null when none is set. */
  alarmAt(): Promise<number | null>;
  /** Sets the alarm to the earliest thing the object must do (its end's delivery, say). */
  rearm(): Promise<void>;
  /** This isolate delivered the run's end to the runs index. */
  endDelivered(): boolean;
  /**
   * A start waits for the invocation in progress (+1), or stops (-1): meanwhile a run's end arms no
   * alarm for its delivery, since the start's caller starts it again should the object die.
   */
  waiting(change: 1 | -1): void;
  cancel(reason: CancelReason): Promise<unknown>;
}

/**
 * Stores the run (once: a repeated start changes nothing) and starts it, or arms the alarm for a
 * delayed start. Returns as soon as the run is stored, not when it ends; a start its caller repeats
 * (`init.repeatedUntilAnswered`) returns once the run's first invocation ended or its watchdog is armed.
 *
 * @example
 * const status = await storeAndStart(ctx, init);
 */
export async function storeAndStart(ctx: RunStartContext, init: RunInit): Promise<RunStatus> {
  const existing = ctx.store.run();
  if (existing) return restart(ctx, init, existing.status);
  const now = Date.now();
  const fn = await ctx.functionOf(init.functionId);
  // A run under a throttle or a concurrency limit starts as a delayed one does: its first invocation asks for its start or a slot.
  // So is a re-run that reuses steps: its first invocation begins after them, as a replay does.
  const delayed = init.startAt > now || fn?.flow.concurrency !== undefined || fn?.flow.throttle !== undefined || (init.memo?.length ?? 0) > 0;
  const finishAfter = fn?.timeouts.finish;
  const listed = { id: init.runId, functionId: init.functionId, events: init.events, status: "Queued" as const, startedAt: now, listedAt: init.listedAt ?? now, ...(init.parent ? { parent: init.parent } : {}), indexedOn: null };
  // A run due later is listed now, as Queued; one that starts now writes its row when it is worth one (RunDelivery.indexOpen).
  const indexedOn = init.startAt > now ? (await ctx.delivery.indexOpen(listed)).indexedOn : null;
  // A start repeated while that write (or the read of a synced app's function) was under way found no run either: the first one stored it.
  if (ctx.store.run()) return restart(ctx, init, ctx.store.run()!.status);
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
  // A start its caller repeats until answered needs no watchdog while it waits for the first invocation.
  const watchedByCaller = !delayed && init.repeatedUntilAnswered === true;
  if (!watchedByCaller) await ctx.setAlarm(delayed ? init.startAt : now + WATCHDOG_MS);
  if (fn?.cancelOn.length) void ctx.delivery.deliverOutbox();
  if (init.startAt <= now && delayed) void ctx.execute(false);
  if (delayed) return "Queued";
  // Not started within `timeouts.start` of when it was due (dispatch came late): cancelled, never run.
  if (fn?.timeouts.start !== undefined && now > init.startAt + fn.timeouts.start) {
    await ctx.cancel({ type: "timeout", timeout: "start" });
    return "Cancelled";
  }
  const first = ctx.execute(true);
  if (!watchedByCaller) return "Running";
  await firstInvocationSettled(ctx, first);
  return ctx.store.run()?.status ?? "Running";
}

/**
 * A start repeated: nothing changes, unless the object died in the run's first invocation, armed
 * with no watchdog (`repeatedUntilAnswered`): it arms that watchdog now, due when it would have been
 * (recovery keeps its pace: a step that kills the runtime is not run again at each redelivery). So
 * does a start that does not wait (a resume's): the dispatch's repeat may have met the function
 * paused, and held the event for it. One its caller repeats, made while that invocation still runs
 * here, answers when the first start would.
 */
async function restart(ctx: RunStartContext, init: RunInit, status: RunStatus): Promise<RunStatus> {
  const invoking = ctx.invoking();
  if (invoking) {
    if (init.repeatedUntilAnswered) await firstInvocationSettled(ctx, invoking);
    return ctx.store.run()?.status ?? status;
  }
  const ended = FINAL_STATUSES.has(status);
  // Only an end made while a start waited may have no alarm for its delivery (armSoon arms none meanwhile):
  // one this isolate did not deliver may have died with the last one. The alarm delivers it again (an idempotent write).
  if (ended && (!init.repeatedUntilAnswered || ctx.endDelivered())) return status;
  if ((await ctx.alarmAt()) !== null) return status;
  const began = ctx.store.run()?.starts.at(-1)?.at ?? Date.now();
  await ctx.setAlarm(ended ? Date.now() : Math.max(Date.now(), began + WATCHDOG_MS));
  return status;
}

/**
 * Waits for the run's first invocation to record what came of it, at most FIRST_INVOCATION_WAIT_MS:
 * past that, a run still in it gets its watchdog, as every start's did before it began.
 */
async function firstInvocationSettled(ctx: RunStartContext, first: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<"waited">((resolve) => (timer = setTimeout(() => resolve("waited"), FIRST_INVOCATION_WAIT_MS)));
  ctx.waiting(1);
  const outcome = await Promise.race([first.then(() => "settled" as const), waited]).finally(() => {
    clearTimeout(timer);
    ctx.waiting(-1);
  });
  // Ended: what its end needs, which it left to the waiting start, even once the invocation settled:
  // an end that did not come from it (a cancel, `timeouts.finish`) may still be on its way to the runs
  // index. Still running: the watchdog. An invocation that recorded a sleep or a retry armed it: a
  // watchdog now would only replace it.
  const run = ctx.store.run();
  if (run && FINAL_STATUSES.has(run.status)) return void (ctx.endDelivered() || (await ctx.rearm()));
  if (outcome === "waited" && run?.isOpen) await ctx.setAlarm(Date.now() + WATCHDOG_MS);
}
