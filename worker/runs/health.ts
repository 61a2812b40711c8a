import type { StepRecord } from "../../sdk/run.ts";
import type { RunStatus } from "../platform/types.ts";
import { FINAL_STATUSES } from "../platform/types.ts";
import type { RunRecord } from "./records.ts";

// What a run's object tells the tick about its health (admin/stuck.ts turns it into a verdict), and
// the repairs an operator made to it, kept on its own record for its timeline.

/** An unfinished run's facts as its object knows them: enough to say whether anything will move it. */
export interface RunFacts {
  status: RunStatus;
  endedAt?: number;
  /** When the object's alarm will fire; null when it has none. */
  alarmAt?: number | null;
  /** An invocation is running in the object's memory now. */
  invoking?: boolean;
  /** When the run is due again (a sleep, a retry, a delayed start). */
  wakeAt?: number;
  /** Its function is registered (false: a deploy removed or renamed it; absent: the registry could not be read). */
  functionRegistered?: boolean;
  /** When the first failed attempt of a step still retrying began; absent when no step retries. */
  retryingSince?: number;
  /** Its function waits for concurrency slots or a throttle's turn: a wake time long past is its queue, not a fault. */
  flowControlled?: boolean;
}

/**
 * The facts of `run` (a final run: its status and end only).
 *
 * @example
 * const facts = runFacts(run, steps, { alarmAt: await storage.getAlarm(), invoking: false, functionRegistered: true });
 */
export function runFacts(run: RunRecord, steps: Iterable<StepRecord>, live: { alarmAt: number | null; invoking: boolean; functionRegistered?: boolean; flowControlled?: boolean }): RunFacts {
  if (FINAL_STATUSES.has(run.status)) return { status: run.status, ...(run.endedAt ? { endedAt: run.endedAt } : {}) };
  const retrying = [...steps].filter((step) => step.status === "retrying").map((step) => step.failedAttempts?.[0]?.startedAt ?? step.startedAt);
  return {
    status: run.status,
    alarmAt: live.alarmAt,
    invoking: live.invoking,
    ...(run.wakeAt !== undefined ? { wakeAt: run.wakeAt } : {}),
    ...(live.functionRegistered !== undefined ? { functionRegistered: live.functionRegistered } : {}),
    ...(retrying.length > 0 ? { retryingSince: Math.min(...retrying) } : {}),
    ...(live.flowControlled ? { flowControlled: true } : {}),
  };
}

/** What an operator did to a run to move it on (docs/production.md "Stuck runs"). */
export type RepairAction = "wake" | "cancel" | "rerun" | "repoint";

/** A repair as the run's record keeps it: what, when, and what it named (the new function, the new run). */
export interface RepairEntry {
  action: RepairAction;
  at: number;
  detail?: string;
}

/** The repairs a run's record keeps: the latest ones, so that a button pressed many times cannot grow the row. */
export const MAX_REPAIRS_KEPT = 20;

/** `repairs` with `entry` added (the oldest dropped past MAX_REPAIRS_KEPT). */
export function withRepair(repairs: RepairEntry[] | undefined, entry: RepairEntry): RepairEntry[] {
  return [...(repairs ?? []), entry].slice(-MAX_REPAIRS_KEPT);
}

/**
 * The retrying steps of a run a wake brings forward to `now`: a retry's backoff is the engine's
 * choice, not the program's, so an operator may cut it short. Sleeps and waits keep their times.
 */
export function retriesToBringForward(steps: Iterable<StepRecord>, now: number): StepRecord[] {
  return [...steps].filter((step) => step.status === "retrying" && (step.wakeAt ?? 0) > now).map((step) => ({ ...step, wakeAt: now }));
}
