/** Inngest's retry schedule (its pkg/backoff table): the wait after the 1st, 2nd, ... failure. */
const BACKOFF_TABLE_MS = [15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200].map((seconds) => seconds * 1000);
/** Inngest adds up to 30 s of jitter to every wait. */
const MAX_JITTER_MS = 30_000;

/**
 * How long to wait after `failedAttempts` failures (1 for the first): 15 s, 30 s, 1 m, 2 m, 5 m,
 * 10 m, 20 m, 40 m, 1 h, then 2 h, each plus up to 30 s of jitter, as Inngest retries. A few
 * minutes' outage of anything a step calls is ridden out by the default 4 retries.
 *
 * @example
 * backoffDelay(1, () => 0); // 15_000
 */
export function backoffDelay(failedAttempts: number, random: () => number = Math.random): number {
  const index = Math.min(Math.max(failedAttempts, 1), BACKOFF_TABLE_MS.length) - 1;
  return BACKOFF_TABLE_MS[index]! + Math.floor(random() * MAX_JITTER_MS);
}
