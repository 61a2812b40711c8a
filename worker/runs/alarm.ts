import { FINAL_STATUSES } from "../platform/types.ts";
import { WATCHDOG_MS } from "./invocation.ts";
import type { RunRecord } from "./records.ts";

// When a run's object must wake next: its one alarm carries every timer (DESIGN "A run").

/** How soon an outbox entry or a run's end that could not be delivered is tried again. */
export const DELIVERY_RETRY_MS = 5_000;
export const DAY_MS = 24 * 60 * 60 * 1000;

/** What the next alarm depends on besides the run's record. */
export interface AlarmInputs {
  now: number;
  /** The outbox holds an entry not delivered yet. */
  undelivered: boolean;
  /** The run's end reached the runs index. */
  endDelivered: boolean;
  /** When the run's trace, not exported yet, is tried again (worker/traces/schedule.ts). */
  traceRetryAt?: number;
}

/**
 * The earliest thing the object must do: deliver what is undelivered (its trace on its own schedule), wake the run when it is due
 * (or watch an invocation in progress), or end it at `timeouts.finish`. Null when there is nothing: a run that is over and has
 * delivered everything needs no alarm, since the tick deletes its object with its index row at retention (a set alarm is a
 * row written).
 */
export function nextAlarm(run: RunRecord, { now, undelivered, endDelivered, traceRetryAt }: AlarmInputs): number | null {
  const times: number[] = [];
  if (traceRetryAt !== undefined) times.push(traceRetryAt);
  if (undelivered) times.push(now + DELIVERY_RETRY_MS);
  if (FINAL_STATUSES.has(run.status)) {
    if (!endDelivered) times.push(now + DELIVERY_RETRY_MS);
  } else if (run.isOpen) times.push(now + WATCHDOG_MS);
  else times.push(run.wakeAt ?? now);
  if (!FINAL_STATUSES.has(run.status) && run.finishBy !== undefined) times.push(run.finishBy);
  return times.length > 0 ? Math.min(...times) : null;
}
