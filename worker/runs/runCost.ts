import type { StepRecord } from "../../sdk/run.ts";
import LIST_PRICES from "../platform/listPrices.json";
import type { Usage } from "../platform/usage.ts";
import type { RunRecord } from "./records.ts";

// A run's estimated bill, written with its end to its row of the runs index (`cost_usd`): what the
// account's daily budget sums and the dashboard shows per function. Estimated from the run's own
// record with the per-run counts `npm run bench` measures (docs/performance.md "Cost"), since the
// engine's counters (GET /v1/usage) belong to an isolate, not to a run.

/**
 * What one run is billed for, by operation (Usage's counters, plus the Workers request of its event).
 * R2 operations (large values) are left out of the estimate.
 */
export type RunUsage = Pick<Usage, "doRequests" | "doRowsWritten" | "d1RowsWritten" | "queueMessages"> & { workersRequests: number };

/**
 * A run's billable operations as measured per run, for a run an event started: 2 Durable Object
 * requests (its start, and the tick's at retention that deletes it); in its object 2 + steps rows
 * and no alarm (the dispatch starts it again should the object die in its first invocation, and the
 * tick deletes it at retention: runs/runStart.ts, schedule/retention.ts); 4 D1 rows (its event with
 * its entry by name and its dispatched mark, its index row, keyed by function and start); no queue
 * message (an event sent alone dispatches itself). Each invocation after the first adds a request
 * (its alarm), 2 rows and the alarm set for it (it sets no watchdog, nor does an end inside it: the
 * runtime runs its alarm again should it die); each event it sent adds its outbox row and its
 * deletion, its 4 D1 rows (its id is not one of its receipt: one entry more) and a queue message. A
 * run a cron, an invoke or a rerun started, or one whose first invocation outlasts a second, sets a
 * watchdog too: one row more than this estimate.
 *
 * @example
 * runUsage(run, steps); // { doRequests: 2, doRowsWritten: 7, d1RowsWritten: 4, queueMessages: 0, workersRequests: 1 }
 */
export function runUsage(run: Pick<RunRecord, "starts">, steps: Iterable<StepRecord>): RunUsage {
  let stepCount = 0;
  let eventsSent = 0;
  for (const step of steps) {
    stepCount++;
    if (step.kind === "sendEvent") eventsSent += sentIds(step.output);
  }
  const laterInvocations = Math.max(0, run.starts.length - 1);
  const alarms = laterInvocations;
  return {
    doRequests: 2 + laterInvocations,
    doRowsWritten: 2 + stepCount + alarms + 2 * laterInvocations + 2 * eventsSent,
    d1RowsWritten: 4 + 4 * eventsSent,
    queueMessages: eventsSent,
    workersRequests: 1,
  };
}

/**
 * Dollars at Cloudflare's Workers Paid list prices (worker/platform/listPrices.json, dollars per
 * million; the included allowances ignored).
 *
 * @example
 * costInDollars({ doRequests: 2, doRowsWritten: 7, d1RowsWritten: 4, queueMessages: 0, workersRequests: 1 }); // 0.0000116
 */
export function costInDollars(usage: RunUsage): number {
  const counts: Partial<Record<string, number>> = usage;
  const perMillion = Object.entries(LIST_PRICES).reduce((sum, [key, price]) => sum + (counts[key] ?? 0) * price, 0);
  return perMillion / 1_000_000;
}

function sentIds(output: unknown): number {
  const ids = (output as { ids?: unknown } | null | undefined)?.ids;
  return Array.isArray(ids) ? ids.length : 0;
}
