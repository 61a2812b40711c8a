import type { FunctionView } from "./api.ts";

// A function's estimated cost per day on the functions page, beside its counts: the last 24 hours'
// runs, each priced with its end at list price (worker/runs/runCost.ts).

/**
 * Dollars as short text: cents for a dollar and more, two significant digits below a cent.
 *
 * @example
 * formatUsd(0.0000176); // "$0.000018"
 */
export function formatUsd(usd: number): string {
  if (usd === 0) return "$0";
  if (usd >= 0.01) return `$${usd.toFixed(2)}`;
  return `$${Number(usd.toPrecision(2)).toFixed(Math.max(2, 1 - Math.floor(Math.log10(usd))))}`;
}

/** "est. $0.0012 / day", with how it is estimated in its title. */
export function CostPerDay({ fn }: { fn: FunctionView }) {
  if (!fn.stats) return null;
  return (
    <p class="muted cost" data-cost-usd={fn.stats.cost_usd} title="Estimated at Cloudflare's list prices from the runs of the last 24 hours that ended (Durable Object requests and rows, D1 rows, queue messages)">
      est. {formatUsd(fn.stats.cost_usd)} / day
    </p>
  );
}

/** Why the engine paused the function (a budget), under its name. */
export function PauseReason({ fn }: { fn: FunctionView }) {
  return fn.paused && fn.pause_reason ? (
    <p class="muted pause-reason" data-pause-reason>
      {fn.pause_reason}
    </p>
  ) : null;
}
