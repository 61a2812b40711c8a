// The Worker `node bench/cron-tick.mjs` times the tick with: a user's entry of the documented shape
// with 1,000 cron functions, all `* * * * *`, so that every tick inside a minute finds none due and
// the first tick of each minute finds all 1,000 due.
//
// The bench drives the tick itself, through POST routes under /bench/ that bypass Stepflare's routes:
// nothing here arms the Scheduler (its middleware does, and the queue handler, which this entry
// replaces by the bare consumer), so no tick runs but the ones the bench times.
import { Stepflare } from "../../sdk/index.ts";
import { instrument } from "../../worker/platform/bindings.ts";
import type { Env } from "../../worker/platform/env.ts";
import { serve } from "../../worker/index.ts";
import type { QueueMessage } from "../../worker/queue/messages.ts";
import { consumeBatch } from "../../worker/dispatch/consumer.ts";
import { tick } from "../../worker/schedule/tick.ts";

export * from "../../worker/index.ts";

/** How many cron functions the Worker registers. */
const CRON_FUNCTIONS = 1_000;

const app = new Stepflare({ id: "bench-cron-tick" });

const functions = Array.from({ length: CRON_FUNCTIONS }, (_, i) =>
  app.createFunction({ id: `bench-cron-${String(i).padStart(4, "0")}` }, { cron: "* * * * *" }, async ({ event }) => ({ scheduledAt: event.ts })),
);

const worker = serve({ client: app, functions });

export default {
  ...worker,
  async fetch(request: Request<unknown, IncomingRequestCfProperties>, env: Env, ctx: ExecutionContext): Promise<Response> {
    const { pathname } = new URL(request.url);
    const metered = instrument(env);
    if (pathname === "/bench/ready") return Response.json({ functions: CRON_FUNCTIONS });
    // One tick, as the Scheduler's alarm runs it: how long it took (the clock moves across its I/O).
    if (request.method === "POST" && pathname === "/bench/tick") {
      const started = Date.now();
      const result = await tick(metered, started);
      return Response.json({ ms: Date.now() - started, ...result });
    }
    // What D1 holds: the crons rows, and the runs index by status, for the bench's checks.
    if (request.method === "POST" && pathname === "/bench/state") {
      const [crons, runs] = await metered.DB.batch([
        metered.DB.prepare("SELECT COUNT(*) AS n, MIN(next_at) AS min_next_at, MAX(next_at) AS max_next_at FROM crons"),
        metered.DB.prepare("SELECT status, COUNT(*) AS n FROM runs GROUP BY status"),
      ]);
      return Response.json({ crons: crons!.results[0], runs: Object.fromEntries((runs!.results as { status: string; n: number }[]).map((r) => [r.status, r.n])) });
    }
    return worker.fetch!(request, env, ctx);
  },
  // The consumer without the Scheduler's arming (serve's queue handler arms it).
  async queue(batch: MessageBatch<QueueMessage>, env: Env): Promise<void> {
    await consumeBatch(batch, instrument(env));
  },
};
