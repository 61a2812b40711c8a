// Scenario 14: a step whose output is 3 MiB (stored in R2, the VALUES bucket bench/stepflare/wrangler.toml
// binds) beside the same run with a small output: ms per run and, from GET /v1/usage, its R2 operations.
import { isDeepStrictEqual } from "node:util";
import { stepflareBatch } from "./shared.mjs";

const MiB = 1024 * 1024;

/** `runs` runs of bench-large-step: a step returning `bytes`, a 1 ms sleep (the replay reads the output back), a step that counts. */
const largeStepSystems = (bytes) => ({
  async stepflare(ctx, { runs }) {
    const { ids, ms } = await stepflareBatch(ctx, "bench/large-step", runs, { bytes }, 120_000);
    ctx.expectRuns(ids, (run) => run.function_id === "bench-large-step" && isDeepStrictEqual(run.output, { length: bytes }));
    return { msPerRun: ms / runs };
  },
});

const msPerRun = [{ key: "msPerRun", label: "ms/run", unit: "ms/run", better: "lower" }];

export const largeStep = {
  id: "large-step",
  name: "14. 20 runs: a 3 MiB step output (R2), a sleep, a step",
  params: { runs: 20 },
  warmup: { runs: 2 },
  metrics: msPerRun,
  systems: largeStepSystems(3 * MiB),
  targets: [],
};

export const largeStepSmall = {
  id: "large-step-small",
  name: "14b. 20 runs: scenario 14's run with a 16-byte output",
  params: { runs: 20 },
  warmup: { runs: 2 },
  metrics: msPerRun,
  systems: largeStepSystems(16),
  targets: [],
  ratios: [{ text: "ms/run, 3 MiB output ÷ 16 bytes", value: (v) => v("large-step", "msPerRun", "stepflare") / v("large-step-small", "msPerRun", "stepflare") }],
};
