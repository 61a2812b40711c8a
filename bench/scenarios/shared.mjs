// What the scenario modules share: batches sent at once or runs timed one at a time, the counter
// hits they wait for, p50 / p95, ratios that are null when a side was not measured, lateness metrics.
import { percentile } from "../lib/stats.mjs";

export const range = (n) => Array.from({ length: n }, (_, i) => i);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Time of the last hit (Node clock). */
const lastHitAt = (hits) => Math.max(...[...hits.values()].map((hit) => hit.at));

/** p50 and p95 of a list of ms values. */
export const p50p95 = (values) => ({ p50: percentile(values, 50), p95: percentile(values, 95) });

/** Stepflare: sends `runs` events of `name` in one request and waits for every run's counter hit. */
export async function stepflareBatch(ctx, name, runs, extra, timeoutMs) {
  const tag = ctx.tag();
  const events = range(runs).map((i) => ({ name, data: { counter: ctx.counter.url, tag, i, ...extra } }));
  const done = ctx.expectHits(tag, runs, timeoutMs);
  const t0 = ctx.now();
  const ids = await ctx.sf.send(events);
  const hits = await done;
  return { ids, hits, ms: lastHitAt(hits) - t0 };
}

/** Workflows: creates `runs` instances of `workflow` (createBatch) and waits for every counter hit. */
export async function workflowsBatch(ctx, workflow, runs, extra, timeoutMs) {
  const tag = ctx.tag();
  const instances = range(runs).map((i) => ({ id: `${tag}-${i}`, params: { counter: ctx.counter.url, tag, i, ...extra } }));
  const done = ctx.expectHits(tag, runs, timeoutMs);
  const t0 = ctx.now();
  await ctx.cf.create(workflow, instances);
  const hits = await done;
  return { ids: instances.map((instance) => instance.id), hits, ms: lastHitAt(hits) - t0 };
}

/**
 * `runs` runs one at a time: `start(i, tag)` starts (or resumes) run i and answers its id; its timed
 * step reports `t`, its Date.now(), to the counter under `tag`. Answers the ids and each run's start
 * → `t`, in ms.
 */
export async function oneAtATime(ctx, runs, start, tag = ctx.tag()) {
  const ids = [];
  const latencies = [];
  for (const i of range(runs)) {
    const { id, ms } = await timeOne(ctx, tag, i, () => start(i, tag));
    ids.push(id);
    latencies.push(ms);
  }
  return { ids, latencies };
}

/** Run i of `tag`: `send()` starts or resumes it (answers its id); answers the id and the time until its step reported `t`. */
export async function timeOne(ctx, tag, i, send) {
  const done = ctx.expectHits(tag, i + 1, 10_000);
  const t0 = ctx.now();
  const id = await send();
  const hits = await done;
  return { id, ms: hits.get(i).t - t0 };
}

/** a ÷ b, or null when either is missing. */
export const ratioOf = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : null);
/** `check` on a ratio, or null (not measured) when it is missing. */
export const ratioCheck = (ratio, check) => (ratio === null ? null : check(ratio));

export const latenessMetrics = [
  { key: "p50", label: "p50", unit: "ms", better: "lower" },
  { key: "p95", label: "p95", unit: "ms", better: "lower" },
];
