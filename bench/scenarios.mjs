// The scenarios `npm run bench` runs: one entry per scenario, so later work adds rows here.
//
// A scenario has:
//   id, name          a stable id (rows in latest.json are named after `name`)
//   params, warmup    the sizes of a measured round and of the warm-up round
//   metrics           what one round of a system answers: [{ key, label, unit, better }]
//   systems           { stepflare?, workflows?, floor? }: async (ctx, params) => { [metric key]: number }
//   targets           the targets: [{ text, check(value) → boolean | null }], where
//                     value(scenarioId, metricKey, system) is the median over the rounds
//   rounds            optional, defaults to 3 (the systems take turns in rotating order)
//
// ctx (bench/run.mjs) gives: sf and cf (bench/lib/clients.mjs), counter (bench/lib/counter.mjs),
// tag() (a fresh measurement id), now() (ms, Node clock), expectHits(tag, count, timeoutMs),
// expectRuns(ids, check) and expectInstances(workflow, ids, check) (verified after all timing),
// ingest(params) (scenario 6, bench/lib/ingest.mjs).
import { isDeepStrictEqual } from "node:util";
import { percentile } from "./lib/stats.mjs";

const range = (n) => Array.from({ length: n }, (_, i) => i);

/** Time of the last hit (Node clock). */
const lastHitAt = (hits) => Math.max(...[...hits.values()].map((hit) => hit.at));

/** p50 and p95 of a list of ms values. */
const p50p95 = (values) => ({ p50: percentile(values, 50), p95: percentile(values, 95) });

/** Stepflare: sends `runs` events of `name` in one request and waits for every run's counter hit. */
async function stepflareBatch(ctx, name, runs, extra, timeoutMs) {
  const tag = ctx.tag();
  const events = range(runs).map((i) => ({ name, data: { counter: ctx.counter.url, tag, i, ...extra } }));
  const done = ctx.expectHits(tag, runs, timeoutMs);
  const t0 = ctx.now();
  const ids = await ctx.sf.send(events);
  const hits = await done;
  return { ids, hits, ms: lastHitAt(hits) - t0 };
}

/** Workflows: creates `runs` instances of `workflow` (createBatch) and waits for every counter hit. */
async function workflowsBatch(ctx, workflow, runs, extra, timeoutMs) {
  const tag = ctx.tag();
  const instances = range(runs).map((i) => ({ id: `${tag}-${i}`, params: { counter: ctx.counter.url, tag, i, ...extra } }));
  const done = ctx.expectHits(tag, runs, timeoutMs);
  const t0 = ctx.now();
  await ctx.cf.create(workflow, instances);
  const hits = await done;
  return { ids: instances.map((instance) => instance.id), hits, ms: lastHitAt(hits) - t0 };
}

/** Both systems' n-steps run: `runs` runs of `steps` steps; answers ms per step (wall time / all steps). */
const nStepsSystems = (timeoutMs) => ({
  async stepflare(ctx, { runs, steps }) {
    const { ids, ms } = await stepflareBatch(ctx, "bench/n-steps", runs, { steps }, timeoutMs);
    const sum = (steps * (steps - 1)) / 2;
    ctx.expectRuns(ids, (run) => run.function_id === "bench-n-steps" && isDeepStrictEqual(run.output, { steps, sum }));
    return { msPerStep: ms / (runs * steps) };
  },
  async workflows(ctx, { runs, steps }) {
    const { ids, ms } = await workflowsBatch(ctx, "N_STEPS", runs, { steps }, timeoutMs);
    const sum = (steps * (steps - 1)) / 2;
    ctx.expectInstances("N_STEPS", ids, (output) => isDeepStrictEqual(output, { steps, sum }));
    return { msPerStep: ms / (runs * steps) };
  },
  async floor(ctx, { runs, steps }) {
    const t0 = ctx.now();
    await ctx.cf.floorSteps(ctx.tag(), runs, steps);
    return { msPerStep: (ctx.now() - t0) / (runs * steps) };
  },
});

/** Sleepers: `runs` runs at once; each reports its lateness to the counter. */
const stepflareSleepers = (name, functionId) => async (ctx, { runs }) => {
  const { ids, hits } = await stepflareBatch(ctx, name, runs, {}, 30_000);
  ctx.expectRuns(ids, (run) => run.function_id === functionId && typeof run.output?.lateness === "number");
  return p50p95([...hits.values()].map((hit) => hit.lateness));
};
const workflowsSleepers = (workflow) => async (ctx, { runs }) => {
  const { ids, hits } = await workflowsBatch(ctx, workflow, runs, {}, 30_000);
  ctx.expectInstances(workflow, ids, (output) => typeof output?.lateness === "number");
  return p50p95([...hits.values()].map((hit) => hit.lateness));
};

const latenessMetrics = [
  { key: "p50", label: "p50", unit: "ms", better: "lower" },
  { key: "p95", label: "p95", unit: "ms", better: "lower" },
];

const msPerStep = [{ key: "msPerStep", label: "ms/step", unit: "ms/step", better: "lower" }];

/** The per-step targets for scenario `id`. */
const perStepTargets = (id) => [
  { text: "ms/step ≤ 0.4 × Workflows", check: (v) => v(id, "msPerStep", "stepflare") <= 0.4 * v(id, "msPerStep", "workflows") },
  { text: "ms/step ≤ 1.5 × floor", check: (v) => v(id, "msPerStep", "stepflare") <= 1.5 * v(id, "msPerStep", "floor") },
];

/** What an ingest scenario reports: accepted events per second and the request latency p99. */
const ingestMetrics = [
  { key: "eventsPerSec", label: "events/s", unit: "events/s", better: "higher" },
  { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower" },
];

export const scenarios = [
  {
    id: "one-step",
    name: "1. 100 one-step runs, one request",
    params: { runs: 100 },
    warmup: { runs: 20 },
    metrics: [{ key: "runsPerSec", label: "runs/s", unit: "runs/s", better: "higher" }],
    systems: {
      async stepflare(ctx, { runs }) {
        const { ids, ms } = await stepflareBatch(ctx, "bench/one-step", runs, {}, 60_000);
        ctx.expectRuns(ids, (run, i) => run.function_id === "bench-one-step" && isDeepStrictEqual(run.output, { i }));
        return { runsPerSec: (runs / ms) * 1000 };
      },
      async workflows(ctx, { runs }) {
        const { ids, ms } = await workflowsBatch(ctx, "ONE_STEP", runs, {}, 60_000);
        ctx.expectInstances("ONE_STEP", ids, (output, i) => isDeepStrictEqual(output, { i }));
        return { runsPerSec: (runs / ms) * 1000 };
      },
      async floor(ctx, { runs }) {
        const t0 = ctx.now();
        await ctx.cf.floorSteps(ctx.tag(), runs, 1);
        return { runsPerSec: (runs / (ctx.now() - t0)) * 1000 };
      },
    },
    targets: [
      { text: "runs/s ≥ 0.8 × floor", check: (v) => v("one-step", "runsPerSec", "stepflare") >= 0.8 * v("one-step", "runsPerSec", "floor") },
      { text: "runs/s > Workflows", check: (v) => v("one-step", "runsPerSec", "stepflare") > v("one-step", "runsPerSec", "workflows") },
    ],
  },
  {
    id: "parallel-steps",
    name: "2. 20 runs × 50 steps",
    params: { runs: 20, steps: 50 },
    warmup: { runs: 4, steps: 20 },
    metrics: msPerStep,
    systems: nStepsSystems(60_000),
    targets: perStepTargets("parallel-steps"),
  },
  {
    // The run the cost table prices (README "What it costs"): its rows written per run are read from /v1/usage.
    id: "five-steps",
    name: "2b. 100 runs × 5 steps",
    params: { runs: 100, steps: 5 },
    warmup: { runs: 10, steps: 5 },
    metrics: msPerStep,
    systems: nStepsSystems(60_000),
    targets: perStepTargets("five-steps"),
  },
  {
    id: "long-run",
    name: "3. 1 run × 1,000 steps",
    params: { runs: 1, steps: 1000 },
    warmup: { runs: 1, steps: 50 },
    metrics: msPerStep,
    systems: nStepsSystems(60_000),
    targets: [
      ...perStepTargets("long-run"),
      { text: "ms/step ≤ 1.2 × scenario 2's", check: (v) => v("long-run", "msPerStep", "stepflare") <= 1.2 * v("parallel-steps", "msPerStep", "stepflare") },
    ],
  },
  {
    id: "first-step",
    name: "4. event → first step, 20 one at a time",
    params: { runs: 20 },
    warmup: { runs: 3 },
    metrics: latenessMetrics,
    systems: {
      async stepflare(ctx, { runs }) {
        const tag = ctx.tag();
        const latencies = [];
        for (const i of range(runs)) {
          const done = ctx.expectHits(tag, i + 1, 10_000);
          const t0 = ctx.now();
          const [id] = await ctx.sf.send([{ name: "bench/first-step", data: { counter: ctx.counter.url, tag, i } }]);
          const hits = await done;
          latencies.push(hits.get(i).t - t0);
          ctx.expectRuns([id], (run) => run.function_id === "bench-first-step" && isDeepStrictEqual(run.output, { i }));
        }
        return p50p95(latencies);
      },
      async workflows(ctx, { runs }) {
        const tag = ctx.tag();
        const latencies = [];
        for (const i of range(runs)) {
          const done = ctx.expectHits(tag, i + 1, 10_000);
          const t0 = ctx.now();
          await ctx.cf.create("FIRST_STEP", [{ id: `${tag}-${i}`, params: { counter: ctx.counter.url, tag, i } }]);
          const hits = await done;
          latencies.push(hits.get(i).t - t0);
          ctx.expectInstances("FIRST_STEP", [`${tag}-${i}`], (output) => isDeepStrictEqual(output, { i }));
        }
        return p50p95(latencies);
      },
    },
    targets: [{ text: "p50 ≤ Workflows' create → first step p50", check: (v) => v("first-step", "p50", "stepflare") <= v("first-step", "p50", "workflows") }],
  },
  {
    id: "sleep",
    name: "5. 50 runs sleep 1 s: lateness",
    params: { runs: 50 },
    warmup: { runs: 5 },
    metrics: latenessMetrics,
    systems: {
      // Each run plans its wake-up 1 s ahead and sleeps until then (sleepUntil): lateness counts from the
      // instant it asked to wake, as the floor's alarm does.
      stepflare: stepflareSleepers("bench/sleeper", "bench-sleeper"),
      workflows: workflowsSleepers("SLEEPER"),
      async floor(ctx, { runs }) {
        const tag = ctx.tag();
        const done = ctx.expectHits(tag, runs, 30_000);
        await ctx.cf.floorSleep(tag, runs, ctx.counter.url);
        const hits = await done;
        return p50p95([...hits.values()].map((hit) => hit.lateness));
      },
    },
    targets: [{ text: "lateness p95 ≤ floor's alarm p95 + 10 ms", check: (v) => v("sleep", "p95", "stepflare") <= v("sleep", "p95", "floor") + 10 }],
  },
  {
    id: "sleep-from-start",
    name: "5b. 50 runs step.sleep 1 s: resume − (first step + 1 s)",
    params: { runs: 50 },
    warmup: { runs: 5 },
    metrics: latenessMetrics,
    systems: {
      // step.sleep("1s") after a first step that records its time: the time from that step to the sleep
      // call (50 runs starting at once) counts as lateness too.
      stepflare: stepflareSleepers("bench/sleep-from-start", "bench-sleep-from-start"),
      workflows: workflowsSleepers("SLEEP_FROM_START"),
    },
    targets: [],
  },
  {
    id: "ingest",
    name: "6. ingest POST /e/:key for 10 s",
    params: { seconds: 10, connections: 10 },
    warmup: { seconds: 1, connections: 10 },
    metrics: ingestMetrics,
    systems: {
      stepflare: (ctx, params) => ctx.ingest(params),
    },
    targets: [],
  },
  {
    // Issue "Reliability": the highest rate this machine sustains for 60 s, on loopback; every
    // accepted event must be in D1 and have started its run. `npm run load`; not part of `npm run bench`.
    id: "load",
    name: "7. sustained load: POST /e/:key for 60 s, 50 connections",
    optIn: true,
    rounds: 1,
    params: { seconds: 60, connections: 50 },
    warmup: { seconds: 1, connections: 10 },
    metrics: ingestMetrics,
    systems: {
      stepflare: (ctx, params) => ctx.ingest(params),
    },
    targets: [],
  },
];
