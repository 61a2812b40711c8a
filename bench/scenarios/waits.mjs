// Scenarios 9 and 9b: resuming a run waiting on an event, with 10 and with 10,000 other waits open,
// and the background runs that hold those waits.
import { isDeepStrictEqual } from "node:util";
import { p50p95, range, ratioCheck, ratioOf, sleep, timeOne } from "./shared.mjs";

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

export const waitResume10 = {
  id: "wait-resume",
  name: "9. wait resume, 10 other waits open",
  params: { background: 10, runs: 20 },
  warmup: { background: 10, runs: 3 },
  metrics: waitMetrics,
  systems: { stepflare: waitResume },
  targets: waitTargets("wait-resume"),
  ratios: waitRatios("wait-resume"),
};

export const waitResume10k = {
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
};
