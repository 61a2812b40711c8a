// Scenarios 1–3: runs per second of one-step runs, and ms per step of n-step runs (many short, one long).
import { isDeepStrictEqual } from "node:util";
import { stepflareBatch, workflowsBatch } from "./shared.mjs";

/**
 * Both systems' n-steps run: `runs` runs of `steps` steps; answers ms per step (wall time / all
 * steps). `buffered`: Stepflare's function with buffered checkpoints.
 */
const nStepsSystems = (timeoutMs, { buffered = false } = {}) => ({
  async stepflare(ctx, { runs, steps }) {
    const [name, functionId] = buffered ? ["bench/n-steps-buffered", "bench-n-steps-buffered"] : ["bench/n-steps", "bench-n-steps"];
    const { ids, ms } = await stepflareBatch(ctx, name, runs, { steps }, timeoutMs);
    const sum = (steps * (steps - 1)) / 2;
    ctx.expectRuns(ids, (run) => run.function_id === functionId && isDeepStrictEqual(run.output, { steps, sum }));
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

const msPerStep = [{ key: "msPerStep", label: "ms/step", unit: "ms/step", better: "lower" }];

/** The per-step targets for scenario `id`. */
const perStepTargets = (id) => [
  { text: "ms/step ≤ 0.4 × Workflows", check: (v) => v(id, "msPerStep", "stepflare") <= 0.4 * v(id, "msPerStep", "workflows") },
  { text: "ms/step ≤ 1.5 × floor", check: (v) => v(id, "msPerStep", "stepflare") <= 1.5 * v(id, "msPerStep", "floor") },
];

export const oneStep = {
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
};

export const parallelSteps = {
  id: "parallel-steps",
  name: "2. 20 runs × 50 steps",
  params: { runs: 20, steps: 50 },
  warmup: { runs: 4, steps: 20 },
  metrics: msPerStep,
  systems: nStepsSystems(60_000),
  targets: perStepTargets("parallel-steps"),
};

export const fiveSteps = {
  // The run the cost table prices (docs/performance.md, "What it costs"): its rows written per run are read from /v1/usage.
  id: "five-steps",
  name: "2b. 100 runs × 5 steps",
  params: { runs: 100, steps: 5 },
  warmup: { runs: 10, steps: 5 },
  metrics: msPerStep,
  systems: nStepsSystems(60_000),
  targets: perStepTargets("five-steps"),
};

export const twentySteps = {
  id: "twenty-steps",
  name: "2c. 20 runs × 20 steps",
  params: { runs: 20, steps: 20 },
  warmup: { runs: 4, steps: 20 },
  metrics: msPerStep,
  systems: nStepsSystems(60_000),
  targets: perStepTargets("twenty-steps"),
};

export const twentyStepsBuffered = {
  // Buffered checkpoints (opt-in): the same runs, up to 20 step results in one write.
  id: "twenty-steps-buffered",
  name: "2d. 20 runs × 20 steps, buffered checkpoints",
  params: { runs: 20, steps: 20 },
  warmup: { runs: 4, steps: 20 },
  metrics: msPerStep,
  systems: nStepsSystems(60_000, { buffered: true }),
  targets: perStepTargets("twenty-steps-buffered"),
  ratios: [{ text: "ms/step, buffered ÷ one write a step (2c)", value: (v) => v("twenty-steps-buffered", "msPerStep", "stepflare") / v("twenty-steps", "msPerStep", "stepflare") }],
};

export const longRun = {
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
};
