// Scenarios 10 and 10b: what flow control costs a run: a concurrency limit, and a throttle not reached.
import { isDeepStrictEqual } from "node:util";
import { p50p95, range, ratioCheck, ratioOf, stepflareBatch, timeOne } from "./shared.mjs";

export const concurrency = {
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
};

export const throttle = {
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
};
