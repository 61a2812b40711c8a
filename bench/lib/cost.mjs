// What a run's billable operations (GET /v1/usage, per run) cost at Cloudflare's Workers Paid list
// prices, ignoring the included allowances: the arithmetic of the docs' cost table, in one place.

/** Dollars per million of each operation. A queue message is 3 operations (write, read, delete). */
export const LIST_PRICES = {
  doRequests: 0.15,
  doRowsWritten: 1.0,
  d1RowsWritten: 1.0,
  queueMessages: 3 * 0.4,
  workersRequests: 0.3,
  // R2 (large values, a bucket bound): Class A (put, list) and Class B (get) operations.
  r2ClassA: 4.5,
  r2ClassB: 0.36,
};

/** The issue-21 goal for a million 5-step runs at list price, in dollars. */
export const COST_GOAL_PER_MILLION = 12;
/** The goal with buffered checkpoints, in dollars a million runs. */
export const BUFFERED_COST_GOAL_PER_MILLION = 6;

/**
 * Dollars per million runs for a run's usage (one Workers request per run: an event sent alone).
 * Durable Object duration (a few cents a million) is left out; the docs' table shows it.
 *
 * @example
 * costPerMillion({ doRequests: 1, doRowsWritten: 7, d1RowsWritten: 14, queueMessages: 2 }) // 23.85
 */
export function costPerMillion(usage) {
  const perRun = { ...usage, workersRequests: 1 };
  return Object.entries(LIST_PRICES).reduce((sum, [key, price]) => sum + (perRun[key] ?? 0) * price, 0);
}
