/**
 * When to try again after `failedAttempts` failures: first retry after 1 s, doubling,
 * capped at 10 min, ±25% jitter (DESIGN "A run": Temporal's default shape).
 *
 * @example
 * backoffDelay(1); // ≈ 1000 ms (750..1250)
 */
export function backoffDelay(failedAttempts: number, random: () => number = Math.random): number {
  const base = Math.min(1000 * 2 ** Math.max(0, failedAttempts - 1), 10 * 60 * 1000);
  return Math.round(base * (0.75 + random() * 0.5));
}
