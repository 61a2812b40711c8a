import { systemClock } from "../../sdk/clock.ts";
import { executeRun, type RunHost, type RunOutcome } from "../../sdk/driver.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import type { CancelReason, StepflareFunction } from "../../sdk/function.ts";
import { NonRetriableError } from "../../sdk/errors/NonRetriableError.ts";
import { highestSeq } from "../../sdk/replay.ts";
import { resolveWait } from "../../sdk/wait.ts";
import { serializeError, type Logger, type SerializedError } from "../../sdk/types.ts";
import { MAX_REQUEST_BYTES, parseEvents } from "../ingest/ingest.ts";
import { utf8Bytes } from "../../sdk/output.ts";
import { isDevMode, type Env } from "../platform/env.ts";
import { runAsObject } from "../platform/faults.ts";
import { createLogger } from "../platform/logger.ts";
import { FINAL_STATUSES } from "../platform/types.ts";
import type { CallCheckpoints } from "../remote/checkpoints.ts";
import { executeRemoteRun } from "../remote/execute.ts";
import { RemoteFunction } from "../remote/function.ts";
import { appRequestSigner } from "../remote/signer.ts";
import { atDepth, chainRefusal, runDepth, withoutDepth } from "./depth.ts";
import { requestEntries, waitStepRows } from "./outbox.ts";
import { resolutionTime } from "./records.ts";
import { lastLook } from "./waits.ts";
import type { RunRecord, RunStore } from "./RunStore.ts";
import { LEASE_MS, type RunSlots } from "./slots.ts";

// One invocation of a run: the handler run once against the stored steps, in process through the
// SDK's driver or over HTTP through the remote executor, under the run's timeouts, throttle and
// concurrency slots, with crashes counted. The RunObject records what came of it.

/**
 * A run started by start() executes outside any alarm, so its alarm stands this far ahead as a
 * watchdog: if the runtime dies mid-run, the alarm fires after restart and the run resumes from its
 * stored steps. A run woken by its alarm needs none: the runtime retries an alarm whose handler
 * did not finish.
 */
export const WATCHDOG_MS = 10_000;

/** How long an invocation runs before the run, not listed yet, writes its row of the runs index as running. */
const LIST_AFTER_MS = 1_000;

/**
 * How often a run whose function is not registered looks for it again: a deploy may bring it back,
 * else the tick reports the run stuck (admin/stuck.ts) until an operator re-points or cancels it.
 */
export const FUNCTION_RECHECK_MS = 10 * 60_000;

/** How long after its expected turn a run waiting on a throttle asks again, should its wake-up be lost. */
const THROTTLE_RECHECK_MS = 1_000;

/** What an invocation needs of its RunObject. */
export interface InvocationContext {
  env: Env;
  store: RunStore;
  slots: RunSlots;
  checkpoints: CallCheckpoints;
  /** The run's function, or undefined if no Worker or app registers it. */
  functionOf(id: string): Promise<StepflareFunction | undefined>;
  setAlarm(at: number): Promise<void>;
  rearm(): Promise<void>;
  cancel(reason: CancelReason): Promise<unknown>;
  fail(run: RunRecord, error: SerializedError): Promise<void>;
  record(run: RunRecord, outcome: RunOutcome, logger: Logger): Promise<void>;
  deliverOutbox(): Promise<void>;
  /** Lists the run in the runs index, if it is not: it queues for a slot or its turn, or runs a while. */
  listOpen(): Promise<void>;
  /** Whether the invocation holds its concurrency slots now: while it does, it gives them back itself as it ends. */
  holdingSlots(holding: boolean): void;
  /** Makes the run's record durable (the object's storage sync). */
  sync(): Promise<void>;
  /** Ends the object's isolate (dev mode's fault injection, "kill the runtime"). */
  abort(reason: string): void;
}

/**
 * Runs the handler once against the stored steps and records what came of it. `isFirst`: the
 * invocation a run's start begins with it; `byAlarm`: the alarm handler runs it, and ends with it.
 */
export async function invoke(ctx: InvocationContext, isFirst: boolean, byAlarm = false): Promise<void> {
  const { store } = ctx;
  let run = store.run();
  if (!run || FINAL_STATUSES.has(run.status)) return;
  const now = Date.now();
  if (run.finishBy !== undefined && now >= run.finishBy) return void (await ctx.cancel({ type: "timeout", timeout: "finish" }));
  // Woken early (a watchdog, a delivery retry, the tick): a stored wake or retry time stands.
  if (!run.isOpen && run.wakeAt !== undefined && run.wakeAt > now) return ctx.rearm();
  const logger = createLogger({ run_id: run.id, function_id: run.functionId }, { printStacks: isDevMode(ctx.env) });
  const fn = await ctx.functionOf(run.functionId);
  if (!fn) return waitForFunction(ctx, run, now, logger);
  // A delayed run's first invocation: late by more than `timeouts.start` (the Worker was down), it never runs.
  const isDelayedStart = run.starts.length === 0;
  if (isDelayedStart && fn.timeouts.start !== undefined && run.wakeAt !== undefined && now > run.wakeAt + fn.timeouts.start) {
    return void (await ctx.cancel({ type: "timeout", timeout: "start" }));
  }

  // An invocation that began and never ended died with the runtime (nothing runs it in memory).
  // Under a throttle, no start until it is this run's turn; under a concurrency limit, no slot, no
  // invocation: the coordinator wakes the run when it gives it one (the alarm asks again, should that be lost).
  // A run waiting in a queue past its `timeouts.start` is woken then, to be cancelled and give its place back.
  const startDeadline = isDelayedStart && fn.timeouts.start !== undefined && run.wakeAt !== undefined ? run.wakeAt + fn.timeouts.start + 1 : Infinity;
  if (fn.flow.throttle && isDelayedStart) {
    const answer = await ctx.slots.acquireStart(run, fn, fn.flow.throttle);
    if (!answer.granted) {
      if (endedWhileQueueing(ctx)) return givePlaceBack(ctx, run, fn);
      await ctx.setAlarm(Math.min(Math.max(answer.estimate, now) + THROTTLE_RECHECK_MS, startDeadline));
      return ctx.listOpen();
    }
  }
  if (fn.flow.concurrency && !(await ctx.slots.acquire(run, fn))) {
    if (endedWhileQueueing(ctx)) return givePlaceBack(ctx, run, fn);
    await ctx.setAlarm(Math.min(now + LEASE_MS, startDeadline));
    return ctx.listOpen();
  }
  const recovering = !isFirst && run.isOpen;
  // A run whose invocation died is listed in the runs index now, should it keep dying before a second.
  if (recovering) await ctx.listOpen();
  if (!isFirst) await takeLateEvents(ctx, run, now, logger);
  if (!isFirst) {
    const finishBy = isDelayedStart && fn.timeouts.finish !== undefined ? now + fn.timeouts.finish : run.finishBy;
    run = store.beginInvocation({ at: now, seq: highestSeq(store.steps().values()) }, recovering, finishBy);
    // A watchdog of its own, in case the runtime stops retrying an alarm whose handler died. One
    // the alarm woke needs none until it recovers: should it die, the runtime runs that alarm again
    // (it is deleted only once its handler returns) and the recovery sets one. So the commit a
    // woken run's step code waits for holds no alarm change (50 runs waking at once: the 50th ran
    // its code 16 ms after its wake time, against 22 ms with the change).
    if (!byAlarm || recovering) await ctx.setAlarm(now + WATCHDOG_MS);
  }
  // A death outside any step (a synchronous loop in the handler) leaves no step to blame: after
  // as many deaths in a row as the function has retries (plus the recovery that finds no step), it fails.
  if (run.crashes > fn.retries + 1) {
    const where = fn.bufferedSteps ? "running this run's steps (buffered checkpoints: which step is not known)" : "running this run's code outside any step";
    const message = `the runtime died ${run.crashes} times in a row while ${where}`;
    return ctx.fail(run, { name: "RuntimeDiedError", message });
  }

  const current = run;
  // Outputs in R2 are fetched before the handler reads its memo (none read: nothing to do).
  await store.loadedSteps();
  const host = runHost(ctx, current, fn.bufferedSteps);
  const input = {
    runId: current.id,
    events: withoutDepth(current.events),
    handlerFailures: current.handlerFailures,
    retries: fn.retries,
    stepTimeoutMs: fn.stepTimeoutMs,
    logger,
    starts: current.starts,
    // Under buffered checkpoints the steps the dead invocation ran may not be written: which one it
    // died in is not known, so none is blamed; its deaths count for the run (the check above).
    recovering: recovering && !fn.bufferedSteps,
    middleware: fn.middlewareSetup(),
  };
  const execute = () =>
    fn instanceof RemoteFunction ? executeRemoteRun(fn, input, host, { sign: appRequestSigner(ctx.env), checkpoints: ctx.checkpoints }) : executeRun(fn.handler, input, host);
  // `timeouts.finish` while the handler runs: the cancel stops it at its next step boundary.
  const finishTimer = current.finishBy === undefined ? undefined : setTimeout(() => void ctx.cancel({ type: "timeout", timeout: "finish" }), current.finishBy - now);
  // A run that runs a while is listed as running; a short one writes only its end.
  const listTimer = current.indexedOn !== null ? undefined : setTimeout(() => void ctx.listOpen(), LIST_AFTER_MS);
  // A concurrency slot is held while the invocation runs, renewed well before its lease ends.
  const renewTimer = fn.flow.concurrency ? setInterval(() => void ctx.slots.acquire(current, fn).catch(() => undefined), LEASE_MS / 3) : undefined;
  ctx.holdingSlots(true);
  try {
    const outcome = await (isDevMode(ctx.env) ? runAsObject((reason) => ctx.abort(reason), execute) : execute());
    await ctx.record(current, outcome, logger);
  } finally {
    // Buffered step results are written before the invocation ends, whatever ended it.
    ctx.store.flush();
    clearTimeout(finishTimer);
    clearTimeout(listTimer);
    clearInterval(renewTimer);
    // Sleeping and waiting runs hold no slot.
    if (fn.flow.concurrency) await ctx.slots.release(current, fn).catch(() => undefined);
    ctx.holdingSlots(false);
    // A run that ended meanwhile left its give-back for now (runs/delivery.ts): it goes out after the release.
    void ctx.deliverOutbox();
  }
}

/** Whether the run ended (a cancel) while it asked its coordinators for a place. */
function endedWhileQueueing(ctx: InvocationContext): boolean {
  return FINAL_STATUSES.has(ctx.store.run()?.status ?? "Running");
}

/**
 * A run that ended while it asked for a slot or a start: its end's give-back may have reached the
 * coordinators before its ask did, so it gives back again what the ask took, and leaves the alarm
 * to what its end needs (a delivery's retry, its retention), not the queue's recheck.
 */
async function givePlaceBack(ctx: InvocationContext, run: RunRecord, fn: StepflareFunction): Promise<void> {
  await ctx.slots.withdraw(run, fn);
  await ctx.rearm();
}

/**
 * A run whose function no Worker or app registers (a deploy removed or renamed it) waits rather than
 * failing: its steps stay, and a re-point to the function's new id goes on from them. It is listed in
 * the runs index, so the tick finds it.
 */
async function waitForFunction(ctx: InvocationContext, run: RunRecord, now: number, logger: Logger): Promise<void> {
  logger.warn(`function "${run.functionId}" is not registered in this Worker: the run waits for it (re-point it to a registered function, or cancel it)`);
  if (run.isOpen) ctx.store.suspend(run.wakeAt ?? now, run.handlerFailures, run.indexedOn);
  await ctx.setAlarm(now + FUNCTION_RECHECK_MS);
  await ctx.listOpen();
}

/** What the driver (or the remote executor) reads the run's steps from and stores them through. */
function runHost(ctx: InvocationContext, run: RunRecord, buffered: StepflareFunction["bufferedSteps"]): RunHost {
  const { store } = ctx;
  const durable = ctx.sync();
  durable.catch(() => undefined); // a failed sync breaks the invocation through the driver
  return {
    steps: store.steps(),
    saveStep: (step, events) => {
      const save = () => {
        const entries = [...(events?.length ? [{ kind: "events" as const, events }] : []), ...requestEntries(run, step, store.steps().get(step.id))];
        // Buffered checkpoints (opt-in): a completed step that sends nothing waits to be written with the next.
        if (buffered && step.status === "completed" && entries.length === 0) return store.bufferStep(step, buffered);
        store.saveStep(step, entries);
        if (entries.length > 0) void ctx.deliverOutbox();
      };
      // A large output goes to R2 first (a bucket is bound), then the row that names it.
      const staging = store.values.stageStep(run.id, step);
      return staging ? staging.then(save) : save();
    },
    maxStepOutputBytes: store.values.maxStepOutputBytes,
    prepareEvents: (events, idAt) => prepareStepEvents(ctx.env, run, events, idAt),
    // The run's record (first invocation) or this invocation's start is durable before a step body
    // runs: a body that kills the isolate must find it, or its next start would run it again.
    ready: durable,
    isCancelled: () => store.run()?.status === "Cancelled",
    clock: systemClock,
  };
}

/**
 * Events a step sends are validated like the event API's; bad ones fail the step for good, and so
 * does a send past the event chain's depth limit (runs/depth.ts). Each is one level deeper than the run.
 */
function prepareStepEvents(env: Env, run: RunRecord, events: unknown[], idAt: (position: number) => string): StoredEvent[] {
  if (events.length === 0) return [];
  const tooDeep = chainRefusal(env, run);
  if (tooDeep) throw new NonRetriableError(`step.sendEvent: ${tooDeep}`);
  let parsed: StoredEvent[];
  try {
    parsed = parseEvents(events, idAt);
  } catch (err) {
    throw new NonRetriableError(`step.sendEvent: ${serializeError(err).message}`);
  }
  // One send carries at most what one request to the event API may.
  const bytes = utf8Bytes(JSON.stringify(parsed));
  if (bytes > MAX_REQUEST_BYTES) throw new NonRetriableError(`step.sendEvent: the events are ${bytes} bytes; the limit is ${MAX_REQUEST_BYTES} bytes (3 MiB) per send`);
  return atDepth(parsed, runDepth(run.events) + 1);
}

/**
 * A wait that times out now first takes an event received before its timeout that the queue has
 * not brought yet (DESIGN "Waits"): one read of the event log, made only when a wait times out.
 * Should the read fail, the wait times out as it would have.
 */
async function takeLateEvents(ctx: InvocationContext, run: RunRecord, now: number, logger: Logger): Promise<void> {
  const timingOut = [...ctx.store.steps().values()].filter((step) => step.status === "waiting" && step.request?.type === "wait" && (step.wakeAt ?? Infinity) <= now);
  if (timingOut.length === 0) return;
  try {
    for (const { row, accepted } of await lastLook(ctx.env, timingOut.flatMap((step) => waitStepRows(run, step)))) {
      const step = ctx.store.steps().get(row.step_id);
      const resolved = step && resolveWait(step, row.idx, withoutDepth([accepted.event])[0]!, resolutionTime(run, accepted.receivedAt, now));
      if (resolved) ctx.store.saveStep(resolved);
    }
  } catch (err) {
    logger.warn("could not read the event log before a wait's timeout; the wait times out", { error: String(err) });
  }
}
