// The Worker of the shards end-to-end test (test/e2e/shards.test.ts), served by three.toml and then
// four.toml: a one-step function for the bulk of the events, one that waits for a reply matched by
// key, and `GET /test/shards`, what each bound D1 database holds, read through its own binding.
import { Stepflare } from "../../../sdk/index.ts";
import { serve } from "../../../worker/index.ts";

export * from "../../../worker/index.ts";

const app = new Stepflare({ id: "shards-e2e" });

/** One step per event: an event row, a run and its index row, each on the shard its id names. */
const ping = app.createFunction({ id: "shards-ping" }, { event: "shards/ping" }, async ({ event, step }) => {
  const n = await step.run("echo", () => event.data.n as number);
  return { n };
});

/** Waits (an hour at most) for the `shards/reply` whose `data.key` is its trigger's, then reports it. */
const waiter = app.createFunction({ id: "shards-waiter" }, { event: "shards/wait" }, async ({ step }) => {
  const reply = await step.waitForEvent("reply", { event: "shards/reply", match: "data.key", timeout: "1h" });
  return await step.run("after", () => ({ replied: reply?.data.v ?? null }));
});

/** What one D1 database holds of the sharded tables. */
export interface ShardContents {
  binding: string;
  events: string[];
  runs: string[];
  waits: { event_name: string; run_id: string }[];
}

/** The contents of DB, DB_1, … up to the first binding missing, as the Worker has them bound. */
async function shardContents(env: Record<string, D1Database | undefined>): Promise<ShardContents[]> {
  const contents: ShardContents[] = [];
  for (let i = 0; ; i++) {
    const binding = i === 0 ? "DB" : `DB_${i}`;
    const db = env[binding];
    if (!db) return contents;
    const [events, runs, waits] = await db.batch<Record<string, string>>([
      db.prepare("SELECT id FROM events"),
      db.prepare("SELECT id FROM runs"),
      db.prepare("SELECT event_name, run_id FROM waits WHERE kind = 'wait'"),
    ]);
    contents.push({
      binding,
      events: events!.results.map((row) => row.id!),
      runs: runs!.results.map((row) => row.id!),
      waits: waits!.results.map((row) => ({ event_name: row.event_name!, run_id: row.run_id! })),
    });
  }
}

const handler = serve({ client: app, functions: [ping, waiter] });

export default {
  ...handler,
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/test/shards") return Response.json(await shardContents(env as unknown as Record<string, D1Database | undefined>));
    return handler.fetch!(request, env, ctx);
  },
} satisfies typeof handler;
