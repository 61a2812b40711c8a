import type { StepRecord } from "./driver.ts";

/**
 * When one invocation of a run began, and how many step results the run had stored by then (the
 * highest completion `seq`). A run keeps one per invocation: sleeps are not written when they
 * wake, so this is what says when, among the stored results, a sleep was over.
 */
export interface InvocationStart {
  at: number;
  seq: number;
}

/**
 * The order in which a replay settles the stored steps of a run: the order in which they first
 * settled. A completed or failed step settled at its completion `seq`; a sleep (or a wait: timed
 * out, or resolved from outside) settled when the first invocation that began at or after its
 * wake time began, after the results stored by then. Steps that do not settle on replay (a sleep,
 * wait or retry still to come) are left out.
 *
 * @example
 * replayOrder(steps, [{ at: t0, seq: 0 }, { at: t1, seq: 2 }]); // hashed ids, first settled first
 */
export function replayOrder(steps: Iterable<StepRecord>, starts: readonly InvocationStart[]): string[] {
  const current = starts.at(-1);
  const keyed: { id: string; key: number; wokenBy: number; at: number }[] = [];
  for (const step of steps) {
    if ((step.status === "completed" || step.status === "failed") && step.seq !== undefined) {
      keyed.push({ id: step.id, key: step.seq, wokenBy: 0, at: 0 });
    } else if (settlesByTime(step) && current && step.wakeAt! <= current.at) {
      const wokenBy = starts.findIndex((start) => start.at >= step.wakeAt!);
      keyed.push({ id: step.id, key: starts[wokenBy]!.seq + 0.5, wokenBy, at: step.wakeAt! });
    }
  }
  // Sleeps woken by different invocations with no result stored in between settle in the order
  // they woke (a sleep after a sleep); sleeps and resolutions that one invocation found together,
  // in the order of their times (two events for two waits: the first to arrive first), then by id.
  return keyed
    .sort((a, b) => a.key - b.key || a.wokenBy - b.wokenBy || a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((entry) => entry.id);
}

/**
 * True for a step that settles when its `wakeAt` has passed rather than at a `seq`: a sleep, a
 * wait (which times out then), and a wait or child run resolved from outside the handler.
 */
export function settlesByTime(step: StepRecord): boolean {
  if (step.wakeAt === undefined) return false;
  if (step.status === "sleeping" || step.status === "waiting") return true;
  return (step.status === "completed" || step.status === "failed") && step.seq === undefined;
}

/** The highest completion seq among stored steps (0 when none has settled). */
export function highestSeq(steps: Iterable<StepRecord>): number {
  let highest = 0;
  for (const step of steps) if (step.seq !== undefined && step.seq > highest) highest = step.seq;
  return highest;
}
