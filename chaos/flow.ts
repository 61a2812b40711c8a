// Flow control across features (chaos/lib/flow.mjs and chaos/lib/pause.mjs send their events,
// chaos/verify/flow.mjs and chaos/verify/pause.mjs check them): a concurrency limit per key whose
// queued runs the runner cancels, a throttle, a debounce and a batch of bursts under one key, and
// the function the runner pauses (an event, a cron, step.invoke's child) with the one that invokes
// it; and the engine's coordinator with a read of its tables added, for the checks.
import { env as workerEnv } from "cloudflare:workers";
import { NonRetriableError } from "../sdk/index.ts";
import { FlowObject as EngineFlowObject } from "../worker/index.ts";
import { app, counted, hit, type ChaosData } from "./counter.ts";

/**
 * Two runs per key at once (`data.key`, one key per burst the runner sends): a step that works
 * `data.workMs` (2.5–3.5 s) after reporting, then another. The runner cancels some of the runs
 * that wait for a slot (`DELETE /v1/runs/:id`); those behind them must still run.
 */
const queued = app.createFunction<ChaosData>({ id: "chaos-queued", retries: 3, concurrency: { limit: 2, key: "event.data.key" } }, { event: "chaos/queued" }, async (ctx) => {
  const worked = await ctx.step.run("work", async () => {
    await hit(ctx.event.data, "chaos-queued", "work", ctx.attempt, ctx);
    await new Promise((resolve) => setTimeout(resolve, ctx.event.data.workMs as number));
    return "worked";
  });
  const done = await counted(ctx, "chaos-queued", "done", "done", () => "done");
  return { worked, done };
});

/** One start per second per key (`data.key`): a burst's runs all start, spaced. */
const throttled = app.createFunction<ChaosData>({ id: "chaos-throttled", retries: 3, throttle: { limit: 1, period: "1s", key: "event.data.key" } }, { event: "chaos/throttled" }, async (ctx) => ({
  got: await counted(ctx, "chaos-throttled", "got", "got", () => ctx.event.id),
}));

/**
 * A burst of events under one key (`data.key`), a few hundred ms apart: one run, 2 s after the
 * burst's last event, with that event alone (Inngest's debounce).
 */
const debounceBurst = app.createFunction<ChaosData>(
  { id: "chaos-debounce-burst", retries: 3, debounce: { period: "2s", key: "event.data.key" } },
  { event: "chaos/debounce-burst" },
  async (ctx) => ({ got: await counted(ctx, "chaos-debounce-burst", "got", "got", () => ctx.events.map((event) => event.id)) }),
);

/** Bursts of 2–7 events under one key (`data.key`): runs of at most 3 events, each event in one of them. */
const batchBurst = app.createFunction<ChaosData>(
  { id: "chaos-batch-burst", retries: 3, batchEvents: { maxSize: 3, timeout: "2s", key: "event.data.key" } },
  { event: "chaos/batch-burst" },
  async (ctx) => ({ got: await counted(ctx, "chaos-batch-burst", "got", "got", () => ctx.events.map((event) => event.id)) }),
);

/**
 * The function the runner pauses and resumes: an event, a cron due every minute, and the child of
 * `chaos-invoker`'s `step.invoke`. Its step reports under the event's root (a child's is its
 * parent's), or `pcron@<scheduled time>` for the cron (the counter's URL from `CHAOS_COUNTER`).
 */
const pausable = app.createFunction<ChaosData>({ id: "chaos-pausable", retries: 3 }, [{ event: "chaos/pausable" }, { cron: "* * * * *" }], async (ctx) => {
  const scheduled = ctx.event.name === "inngest/scheduled.timer";
  const counter = scheduled ? (workerEnv as { CHAOS_COUNTER?: string }).CHAOS_COUNTER : ctx.event.data.counter;
  if (!counter) throw new NonRetriableError("CHAOS_COUNTER is not set: chaos/run.mjs writes it into the config it serves");
  const root = scheduled ? `pcron@${new Date(ctx.event.ts).toISOString()}` : ctx.event.data.root;
  const got = await ctx.step.run("got", async () => {
    await hit({ counter, root }, "chaos-pausable", "got", ctx.attempt, ctx);
    return root;
  });
  return { got };
});

/**
 * Invokes `chaos-pausable` with its own root: the child's output, or, while the child's function
 * is paused, the error `step.invoke` fails with at once (caught here).
 */
const invoker = app.createFunction<ChaosData>({ id: "chaos-invoker", retries: 3 }, { event: "chaos/invoker" }, async (ctx) => {
  try {
    const child = await ctx.step.invoke("call", { function: pausable, data: { counter: ctx.event.data.counter, root: ctx.event.data.root } });
    return { invoked: child };
  } catch (err) {
    return { refused: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
});

/** The functions above, for the chaos Worker's `serve`. */
export const flowFunctions = [queued, throttled, debounceBurst, batchBurst, pausable, invoker];

/**
 * The engine's flow coordinator with one read added for the runner: what its SQLite holds (the
 * slots leased, the runs waiting, the events collected) and its alarm. Exported under the engine's
 * class name, so the `FLOWS` binding serves this subclass; the engine's behaviour is untouched.
 */
export class FlowObject extends EngineFlowObject {
  async chaosState(): Promise<CoordinatorState> {
    const sql = this.ctx.storage.sql;
    const rows = <T extends Record<string, SqlStorageValue>>(query: string) => sql.exec<T>(query).toArray();
    return {
      kind: rows<{ v: string }>("SELECT v FROM state WHERE k = 'kind'")[0]?.v ?? null,
      leases: rows<{ run_id: string; expires_at: number }>("SELECT run_id, expires_at FROM leases ORDER BY rowid"),
      waiting: rows<{ run_id: string; order_key: number }>("SELECT run_id, order_key FROM waiting ORDER BY order_key, rowid"),
      // A released event stays known (so one brought again starts nothing): only the unreleased are held.
      pending: rows<{ id: string; received_at: number }>("SELECT id, received_at FROM pending WHERE released_at IS NULL ORDER BY received_at, position, rowid"),
      alarm: await this.ctx.storage.getAlarm(),
    };
  }
}

/** What `POST /chaos/flow` answers for one coordinator. */
interface CoordinatorState {
  kind: string | null;
  leases: { run_id: string; expires_at: number }[];
  waiting: { run_id: string; order_key: number }[];
  pending: { id: string; received_at: number }[];
  alarm: number | null;
}
