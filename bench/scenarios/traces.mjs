// Scenario 12: one-step runs on a Stepflare whose OTLP collector is down, against one with no endpoint.
import { freePort } from "../lib/processes.mjs";
import { mapLimit } from "../lib/clients.mjs";
import { ratioOf, sleep, stepflareBatch } from "./shared.mjs";

/** Polls until every event's run reads Completed through `client`; answers when that was seen (Node clock). */
async function allCompleted(ctx, client, ids, timeoutMs) {
  const deadline = ctx.now() + timeoutMs;
  let pending = ids;
  while (pending.length > 0) {
    if (ctx.now() > deadline) throw new Error(`${pending.length} of ${ids.length} runs not Completed after ${timeoutMs} ms`);
    const done = new Set();
    await mapLimit(pending, 8, async (id) => {
      const [run] = await client.runsOfEvent(id);
      if (run?.status === "Completed") done.add(id);
    });
    pending = pending.filter((id) => !done.has(id));
    if (pending.length > 0) await sleep(20);
  }
  return ctx.now();
}

export const tracesDown = {
  // Issue 24, "Traces out": with STEPFLARE_OTLP_ENDPOINT on a closed port, every run's trace export
  // fails (and is retried later on the alarm); runs must complete as fast as with no endpoint. A
  // second wrangler dev is started for it, so it runs only when named (--only traces-down).
  id: "traces-down",
  name: "12. one-step runs, OTLP collector down against no endpoint",
  optIn: true,
  params: { runs: 50 },
  warmup: { runs: 5 },
  metrics: [
    { key: "plain", label: "no endpoint, until all Completed", unit: "ms/run", better: "lower" },
    { key: "down", label: "collector down, until all Completed", unit: "ms/run", better: "lower" },
  ],
  systems: {
    async stepflare(ctx, { runs }) {
      // A port nothing listens on: each export is refused at once, as from a collector that is down.
      ctx.state.tracesDown ??= freePort().then((port) => ctx.startStepflare("stepflare-traced", { STEPFLARE_OTLP_ENDPOINT: `http://127.0.0.1:${port}/v1/traces` }));
      const traced = await ctx.state.tracesDown;
      // From the batch's send until every run's end is in the runs index.
      const timed = async (sf) => {
        const start = ctx.now();
        const { ids } = await stepflareBatch({ ...ctx, sf }, "bench/one-step", runs, {}, 60_000);
        return ((await allCompleted(ctx, sf, ids, 60_000)) - start) / runs;
      };
      // Each goes first in turn, so neither always meets the other's trailing work.
      ctx.state.tracesDownRound = (ctx.state.tracesDownRound ?? 0) + 1;
      const plainFirst = ctx.state.tracesDownRound % 2 === 1;
      const first = await timed(plainFirst ? ctx.sf : traced.client);
      const second = await timed(plainFirst ? traced.client : ctx.sf);
      const [plain, down] = plainFirst ? [first, second] : [second, first];
      return { plain, down };
    },
  },
  targets: [],
  ratios: [{ text: "collector down ÷ no endpoint, until all Completed", value: (v) => ratioOf(v("traces-down", "down", "stepflare"), v("traces-down", "plain", "stepflare")) }],
};
