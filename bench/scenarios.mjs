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
//   ratios            optional, ratios to print and record beside the table: [{ text, value(value) → number }]
//
// A warm-up round gets the warm-up params with `warmup: true` added.
//
// ctx (bench/run.mjs) gives: sf and cf (bench/lib/clients.mjs), counter (bench/lib/counter.mjs),
// tag() (a fresh measurement id), now() (ms, Node clock), expectHits(tag, count, timeoutMs),
// expectRuns(ids, check) and expectInstances(workflow, ids, check) (verified after all timing),
// ingest(params) (scenario 6, bench/lib/ingest.mjs), note(text) and problem(text), and state, an
// object that lives for the whole bench (scenario 9's background waits), and sfMemoryMb() (the
// resident memory of the Stepflare wrangler dev's processes, in MB, or null).
import { isDeepStrictEqual } from "node:util";
import { percentile } from "./lib/stats.mjs";

const range = (n) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

/**
 * `runs` runs one at a time: `start(i, tag)` starts (or resumes) run i and answers its id; its timed
 * step reports `t`, its Date.now(), to the counter under `tag`. Answers the ids and each run's start
 * → `t`, in ms.
 */
async function oneAtATime(ctx, runs, start, tag = ctx.tag()) {
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
async function timeOne(ctx, tag, i, send) {
  const done = ctx.expectHits(tag, i + 1, 10_000);
  const t0 = ctx.now();
  const id = await send();
  const hits = await done;
  return { id, ms: hits.get(i).t - t0 };
}

/** The event scenario 9's runs wait for; its `data.key` says which run it resumes. */
const WAIT_EVENT = "bench/wait.resolve";
/** Background runs are created this many per request (the event API takes up to 5,000). */
const BACKGROUND_BATCH = 500;

/** The prefix of the match keys of waits on `data.key` values starting with `prefix` (sdk/wait.ts: `data.key="…"`). */
const keyPrefix = (prefix) => `data.key=${JSON.stringify(prefix).slice(0, -1)}`;

/** Polls the bench Worker's GET /bench/waits until D1's waits table holds `count` waits on `data.key` values starting with `prefix`. */
async function untilWaits(ctx, prefix, count, timeoutMs, pollMs = 100) {
  const deadline = ctx.now() + timeoutMs;
  for (;;) {
    const n = await ctx.sf.waits(WAIT_EVENT, keyPrefix(prefix));
    if (n >= count) return n;
    if (ctx.now() > deadline) throw new Error(`${n} of ${count} waits on data.key ${prefix}… in D1's waits table after ${timeoutMs} ms`);
    await sleep(pollMs);
  }
}

/**
 * Scenario 9's background: `count` runs of bench-waiter waiting on WAIT_EVENT with keys `bg-0`,
 * `bg-1`, … that nothing sends. Created once and grown when a scenario needs more (never timed):
 * BACKGROUND_BATCH per request, at most two requests ahead of what D1's waits table holds.
 */
async function ensureBackgroundWaits(ctx, count) {
  const background = (ctx.state.waitBackground ??= { runs: 0 });
  if (background.runs >= count) return;
  const t0 = ctx.now();
  const from = background.runs;
  const memoryBefore = await ctx.sfMemoryMb?.();
  for (let k = from; k < count; k += BACKGROUND_BATCH) {
    await untilWaits(ctx, "bg-", Math.max(from, k - BACKGROUND_BATCH), 300_000, 500);
    const n = Math.min(BACKGROUND_BATCH, count - k);
    await ctx.sf.send(range(n).map((j) => ({ name: "bench/waiter", data: { counter: ctx.counter.url, tag: "wait-background", i: k + j, key: `bg-${k + j}` } })));
  }
  await untilWaits(ctx, "bg-", count, 300_000, 500);
  background.runs = count;
  const seconds = (ctx.now() - t0) / 1000;
  const memoryAfter = await ctx.sfMemoryMb?.();
  const memory = memoryBefore && memoryAfter ? `; the Stepflare wrangler dev's processes went from ${memoryBefore} to ${memoryAfter} MB resident` : "";
  ctx.note(`wait background: ${count - from} runs waiting on ${WAIT_EVENT} created and all seen in D1's waits table in ${seconds.toFixed(1)} s (${((count - from) / seconds).toFixed(0)} runs/s)${memory}`);
}

/**
 * Scenario 9: `background` other runs wait on WAIT_EVENT; this round's `runs` targets wait too
 * (checked in D1 before timing), then each is resumed in turn: the time from POST /e/:key of its
 * event to the step after its wait. Before each resume, an event starts a run of scenario 4's
 * function (event → first step): a reference taken in the same seconds, so the ratio does not
 * follow the machine's phases between scenario 4 and this one.
 */
async function waitResume(ctx, { background, runs, warmup }) {
  await ensureBackgroundWaits(ctx, background);
  const tag = ctx.tag();
  const ids = await ctx.sf.send(range(runs).map((i) => ({ name: "bench/waiter", data: { counter: ctx.counter.url, tag, i, key: `${tag}-${i}` } })));
  await untilWaits(ctx, `${tag}-`, runs, 60_000);
  const [open, others] = [await ctx.sf.waits(WAIT_EVENT), await ctx.sf.waits(WAIT_EVENT, keyPrefix("bg-"))];
  if (others !== background) ctx.problem(`wait resume ${tag}: ${others} background waits in D1, expected ${background}`);
  await sleep(300); // the targets' first invocations end before timing begins
  const refTag = ctx.tag();
  const [resolvers, latencies, refIds, refLatencies] = [[], [], [], []];
  for (const i of range(runs)) {
    const ref = await timeOne(ctx, refTag, i, async () => (await ctx.sf.send([{ name: "bench/first-step", data: { counter: ctx.counter.url, tag: refTag, i } }]))[0]);
    refIds.push(ref.id);
    refLatencies.push(ref.ms);
    const resume = await timeOne(ctx, tag, i, async () => (await ctx.sf.send([{ name: WAIT_EVENT, data: { key: `${tag}-${i}` } }]))[0]);
    resolvers.push(resume.id);
    latencies.push(resume.ms);
  }
  ctx.expectRuns(ids, (run, i) => run.function_id === "bench-waiter" && isDeepStrictEqual(run.output, { i, resolvedBy: resolvers[i] }));
  ctx.expectRuns(refIds, (run, i) => run.function_id === "bench-first-step" && isDeepStrictEqual(run.output, { i }));
  if (!warmup) ctx.note(`wait resume ${tag}: ${open} open waits of ${WAIT_EVENT} in D1 when timing began (${others} background, ${runs} targets)`);
  const ref = p50p95(refLatencies);
  return { ...p50p95(latencies), refP50: ref.p50, refP95: ref.p95 };
}

/** What scenario 9 reports: the resume's p50 and p95, and those of the interleaved event → first step. */
const waitMetrics = [
  { key: "p50", label: "p50", unit: "ms", better: "lower" },
  { key: "p95", label: "p95", unit: "ms", better: "lower" },
  { key: "refP50", label: "ref: event → first step p50", unit: "ms", better: "lower" },
  { key: "refP95", label: "ref: event → first step p95", unit: "ms", better: "lower" },
];

/** Scenario `id`'s wait-resume ratios: against scenario 4, and against its own interleaved event → first step. */
const waitRatios = (id) => [
  { text: "p50 ÷ scenario 4's p50", value: (v) => ratioOf(v(id, "p50", "stepflare"), v("first-step", "p50", "stepflare")) },
  { text: "p95 ÷ scenario 4's p95", value: (v) => ratioOf(v(id, "p95", "stepflare"), v("first-step", "p95", "stepflare")) },
  { text: "p50 ÷ interleaved event → first step p50", value: (v) => ratioOf(v(id, "p50", "stepflare"), v(id, "refP50", "stepflare")) },
  { text: "p95 ÷ interleaved event → first step p95", value: (v) => ratioOf(v(id, "p95", "stepflare"), v(id, "refP95", "stepflare")) },
];

/**
 * Scenario 9b's p50 against 9's, each first divided by its own interleaved event → first step: what
 * 10,000 open waits add to a resume, net of the machine's phase and of what they cost every run.
 */
const flatNet = (v) =>
  ratioOf(ratioOf(v("wait-resume-10k", "p50", "stepflare"), v("wait-resume-10k", "refP50", "stepflare")), ratioOf(v("wait-resume", "p50", "stepflare"), v("wait-resume", "refP50", "stepflare")));

/** The issue's target for scenario `id`: a resume within 1.5× event → first step, scenario 4's and the interleaved one. */
const waitTargets = (id) => [
  {
    text: "p50 ≤ 1.5 × scenario 4's event → first step p50",
    check: (v) => ratioCheck(ratioOf(v(id, "p50", "stepflare"), v("first-step", "p50", "stepflare")), (r) => r <= 1.5),
  },
  {
    text: "p50 ≤ 1.5 × the interleaved event → first step p50",
    check: (v) => ratioCheck(ratioOf(v(id, "p50", "stepflare"), v(id, "refP50", "stepflare")), (r) => r <= 1.5),
  },
];

/** a ÷ b, or null when either is missing. */
const ratioOf = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : null);
/** `check` on a ratio, or null (not measured) when it is missing. */
const ratioCheck = (ratio, check) => (ratio === null ? null : check(ratio));

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
  },
  {
    id: "wait-resume",
    name: "9. wait resume, 10 other waits open",
    params: { background: 10, runs: 20 },
    warmup: { background: 10, runs: 3 },
    metrics: waitMetrics,
    systems: { stepflare: waitResume },
    targets: waitTargets("wait-resume"),
    ratios: waitRatios("wait-resume"),
  },
  {
    // The 9,990 more background runs are created in the first round, before its timing.
    id: "wait-resume-10k",
    name: "9b. wait resume, 10,000 other waits open",
    params: { background: 10_000, runs: 20 },
    warmup: { background: 10, runs: 3 },
    metrics: waitMetrics,
    systems: { stepflare: waitResume },
    targets: [
      ...waitTargets("wait-resume-10k"),
      {
        text: "flat: p50 ≤ 1.2 × scenario 9's (10 waits)",
        check: (v) => ratioCheck(ratioOf(v("wait-resume-10k", "p50", "stepflare"), v("wait-resume", "p50", "stepflare")), (r) => r <= 1.2),
      },
      {
        text: "flat against the interleaved references: (p50 ÷ interleaved) ≤ 1.2 × scenario 9's",
        check: (v) => ratioCheck(flatNet(v), (r) => r <= 1.2),
      },
    ],
    ratios: [
      ...waitRatios("wait-resume-10k"),
      { text: "p50 ÷ scenario 9's p50 (10,000 vs 10 waits)", value: (v) => ratioOf(v("wait-resume-10k", "p50", "stepflare"), v("wait-resume", "p50", "stepflare")) },
      { text: "p95 ÷ scenario 9's p95 (10,000 vs 10 waits)", value: (v) => ratioOf(v("wait-resume-10k", "p95", "stepflare"), v("wait-resume", "p95", "stepflare")) },
      { text: "(p50 ÷ interleaved) ÷ scenario 9's (p50 ÷ interleaved)", value: flatNet },
    ],
  },
  {
    // Issue "Flow control": a concurrency limit's coordinator must cost little per run. Both batches
    // run in each round, in turns, so the machine's phase weighs on both alike.
    id: "concurrency",
    name: "10. 100 one-step runs, concurrency: 10 against unlimited",
    params: { runs: 100 },
    warmup: { runs: 20 },
    metrics: [
      { key: "limitedMs", label: "concurrency 10", unit: "ms", better: "lower" },
      { key: "unlimitedMs", label: "unlimited", unit: "ms", better: "lower" },
    ],
    systems: {
      async stepflare(ctx, { runs }) {
        const limited = await stepflareBatch(ctx, "bench/concurrency-10", runs, {}, 120_000);
        ctx.expectRuns(limited.ids, (run, i) => run.function_id === "bench-concurrency-10" && isDeepStrictEqual(run.output, { i }));
        const unlimited = await stepflareBatch(ctx, "bench/one-step", runs, {}, 60_000);
        ctx.expectRuns(unlimited.ids, (run, i) => run.function_id === "bench-one-step" && isDeepStrictEqual(run.output, { i }));
        return { limitedMs: limited.ms, unlimitedMs: unlimited.ms };
      },
    },
    targets: [
      {
        text: "the limited batch within 1.5 × the unlimited one's time",
        check: (v) => ratioCheck(ratioOf(v("concurrency", "limitedMs", "stepflare"), v("concurrency", "unlimitedMs", "stepflare")), (r) => r <= 1.5),
      },
    ],
    ratios: [{ text: "concurrency 10 ÷ unlimited", value: (v) => ratioOf(v("concurrency", "limitedMs", "stepflare"), v("concurrency", "unlimitedMs", "stepflare")) }],
  },
  {
    // What a throttle under its limit adds to event → first step: the run asks the throttle's
    // coordinator for its start. Throttled and plain runs alternate, one at a time.
    id: "throttle",
    name: "10b. event → first step under a throttle not reached, 20 one at a time",
    params: { runs: 20 },
    warmup: { runs: 3 },
    metrics: [
      { key: "p50", label: "throttled p50", unit: "ms", better: "lower" },
      { key: "p95", label: "throttled p95", unit: "ms", better: "lower" },
      { key: "refP50", label: "plain p50", unit: "ms", better: "lower" },
      { key: "refP95", label: "plain p95", unit: "ms", better: "lower" },
    ],
    systems: {
      async stepflare(ctx, { runs }) {
        const throttled = [];
        const plain = [];
        const ids = [];
        const tags = [ctx.tag(), ctx.tag()];
        for (const i of range(runs)) {
          const a = await timeOne(ctx, tags[0], i, async () => (await ctx.sf.send([{ name: "bench/throttled", data: { counter: ctx.counter.url, tag: tags[0], i } }]))[0]);
          const b = await timeOne(ctx, tags[1], i, async () => (await ctx.sf.send([{ name: "bench/first-step", data: { counter: ctx.counter.url, tag: tags[1], i } }]))[0]);
          throttled.push(a.ms);
          plain.push(b.ms);
          ids.push(a.id);
        }
        ctx.expectRuns(ids, (run, i) => run.function_id === "bench-throttled" && isDeepStrictEqual(run.output, { i }));
        const ref = p50p95(plain);
        return { ...p50p95(throttled), refP50: ref.p50, refP95: ref.p95 };
      },
    },
    targets: [],
    ratios: [
      { text: "throttled p50 ÷ plain p50", value: (v) => ratioOf(v("throttle", "p50", "stepflare"), v("throttle", "refP50", "stepflare")) },
    ],
  },
  {
    // Issue "Inngest compatibility": a function of an app on the official `inngest` SDK, run over
    // its wire protocol, against a local function of the same shape (bench-n-steps), in the same
    // round. With checkpointing (v4's default) the SDK runs the steps in one call and reports each;
    // without, each step is a call of its own, as on Inngest before v4.
    id: "remote-steps",
    name: "11. 20-step runs of an inngest SDK app, checkpointing on and off, against local",
    needsRemoteApp: true,
    params: { runs: 5, steps: 20 },
    warmup: { runs: 2, steps: 20 },
    metrics: [
      { key: "checkpointed", label: "remote, checkpointing", unit: "ms/step", better: "lower" },
      { key: "plain", label: "remote, no checkpointing", unit: "ms/step", better: "lower" },
      { key: "local", label: "local", unit: "ms/step", better: "lower" },
    ],
    systems: {
      async stepflare(ctx, { runs, steps }) {
        const sum = (steps * (steps - 1)) / 2;
        const measure = async (name, functionId) => {
          const { ids, ms } = await stepflareBatch(ctx, name, runs, { steps }, 120_000);
          ctx.expectRuns(ids, (run) => run.function_id === functionId && isDeepStrictEqual(run.output, { steps, sum }));
          return ms / (runs * steps);
        };
        const checkpointed = await measure("bench/remote-n-steps", "bench-app-remote-n-steps");
        const plain = await measure("bench/remote-n-steps-plain", "bench-app-remote-n-steps-plain");
        const local = await measure("bench/n-steps", "bench-n-steps");
        return { checkpointed, plain, local };
      },
    },
    targets: [],
    ratios: [
      { text: "remote with checkpointing ÷ local, per step", value: (v) => ratioOf(v("remote-steps", "checkpointed", "stepflare"), v("remote-steps", "local", "stepflare")) },
      { text: "remote without checkpointing ÷ local, per step", value: (v) => ratioOf(v("remote-steps", "plain", "stepflare"), v("remote-steps", "local", "stepflare")) },
    ],
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
