// When a run's trace is sent again after its collector did not take it, and when it is given up:
// the wait grows with the time since the run ended (no count to store: the end time says it), and
// a run's object is not woken for its trace past an hour.

/** The shortest and longest wait before the next try. */
export const TRACE_RETRY_MIN_MS = 5_000;
export const TRACE_RETRY_MAX_MS = 10 * 60_000;
/** How long after a run's end its trace is still tried: then dropped, with a warning in the log. */
export const TRACE_GIVE_UP_MS = 60 * 60_000;

/**
 * When to try the trace of a run that ended at `endedAt` again: as long again as it has been since
 * the end, between 5 s and 10 min (5 s, 5 s, 10 s, 20 s, … then every 10 min: about 14 tries in the hour).
 *
 * @example
 * nextTraceTry(endedAt, endedAt + 40_000); // endedAt + 80_000
 */
export function nextTraceTry(endedAt: number, now: number): number {
  return now + Math.min(Math.max(now - endedAt, TRACE_RETRY_MIN_MS), TRACE_RETRY_MAX_MS);
}

/** True once a trace not taken by now is given up. */
export function isTraceGivenUp(endedAt: number, now: number): boolean {
  return now - endedAt >= TRACE_GIVE_UP_MS;
}
