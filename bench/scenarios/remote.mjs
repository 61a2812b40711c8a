// Scenario 11: n-step runs of an app on the inngest SDK, served over its wire protocol, against local ones.
import { isDeepStrictEqual } from "node:util";
import { ratioOf, stepflareBatch } from "./shared.mjs";

export const remoteSteps = {
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
};
