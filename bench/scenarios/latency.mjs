// Scenarios 4, 5, 5b and 8: event → first step, sleep lateness (sleepUntil and step.sleep), and step.invoke.
import { isDeepStrictEqual } from "node:util";
import { latenessMetrics, oneAtATime, p50p95, ratioOf, stepflareBatch, workflowsBatch } from "./shared.mjs";

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

export const firstStep = {
  id: "first-step",
  name: "4. event → first step, 20 one at a time",
  params: { runs: 20 },
  warmup: { runs: 3 },
  metrics: latenessMetrics,
  systems: {
    async stepflare(ctx, { runs }) {
      const { ids, latencies } = await oneAtATime(ctx, runs, async (i, tag) => (await ctx.sf.send([{ name: "bench/first-step", data: { counter: ctx.counter.url, tag, i } }]))[0]);
      ctx.expectRuns(ids, (run, i) => run.function_id === "bench-first-step" && isDeepStrictEqual(run.output, { i }));
      return p50p95(latencies);
    },
    async workflows(ctx, { runs }) {
      const { ids, latencies } = await oneAtATime(ctx, runs, async (i, tag) => {
        await ctx.cf.create("FIRST_STEP", [{ id: `${tag}-${i}`, params: { counter: ctx.counter.url, tag, i } }]);
        return `${tag}-${i}`;
      });
      ctx.expectInstances("FIRST_STEP", ids, (output, i) => isDeepStrictEqual(output, { i }));
      return p50p95(latencies);
    },
  },
  targets: [{ text: "p50 ≤ Workflows' create → first step p50", check: (v) => v("first-step", "p50", "stepflare") <= v("first-step", "p50", "workflows") }],
};

export const sleepLateness = {
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
};

export const sleepFromStart = {
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
};

export const invoke = {
  id: "invoke",
  name: "8. step.invoke of a one-step child, 20 one at a time",
  params: { runs: 20 },
  warmup: { runs: 3 },
  metrics: latenessMetrics,
  systems: {
    // Event → the parent's step after step.invoke: dispatch, the parent's first invocation, the
    // child started through the parent's outbox, its step, its end resuming the parent.
    async stepflare(ctx, { runs }) {
      const { ids, latencies } = await oneAtATime(ctx, runs, async (i, tag) => (await ctx.sf.send([{ name: "bench/invoker", data: { counter: ctx.counter.url, tag, i } }]))[0]);
      ctx.expectRuns(ids, (run, i) => run.function_id === "bench-invoker" && isDeepStrictEqual(run.output, { i, child: { doubled: 2 * i } }));
      return p50p95(latencies);
    },
    // Workflows has no invoke: a step creates the child instance and polls its status every 5 ms.
    async workflows(ctx, { runs }) {
      const { ids, latencies } = await oneAtATime(ctx, runs, async (i, tag) => {
        await ctx.cf.create("INVOKER", [{ id: `${tag}-${i}`, params: { counter: ctx.counter.url, tag, i } }]);
        return `${tag}-${i}`;
      });
      ctx.expectInstances("INVOKER", ids, (output, i) => isDeepStrictEqual(output, { i, child: { doubled: 2 * i } }));
      return p50p95(latencies);
    },
  },
  targets: [],
  ratios: [{ text: "p50 ÷ scenario 4's event → first step p50", value: (v) => ratioOf(v("invoke", "p50", "stepflare"), v("first-step", "p50", "stepflare")) }],
};
