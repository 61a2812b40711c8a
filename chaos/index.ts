// The Stepflare Worker `npm run chaos` kills and restarts: a user's entry of the documented shape
// whose steps report every execution of their body to the chaos counter (chaos/counter.ts) BEFORE
// returning, so the counter sees each execution, including one whose result the run never stored
// because the process died.
//
// Each function here (and in chaos/flow.ts, flow control across features) is one or more rows of
// chaos/scenarios.mjs, which holds what each run must end as and how many times each step body may run.
import { env as workerEnv } from "cloudflare:workers";
import { NonRetriableError, RetryAfterError } from "../sdk/index.ts";
import { dispatchedAtSql } from "../worker/db/events.ts";
import { shardsOf } from "../worker/db/shards.ts";
import type { Env } from "../worker/platform/env.ts";
import { serve } from "../worker/index.ts";
import type { StepflareService } from "../worker/rpc.ts";
import { app, counted, hit, type ChaosData } from "./counter.ts";
import { FlowObject, flowFunctions } from "./flow.ts";

export * from "../worker/index.ts";
// The engine's coordinator with a read of its tables added (chaos/flow.ts), under the engine's name.
export { FlowObject };

/** Multi-step with a sleep of `data.sleepMs` (1–3 s) between steps. */
const steps = app.createFunction<ChaosData>({ id: "chaos-steps", retries: 3 }, { event: "chaos/steps" }, async (ctx) => {
  const n = ctx.event.data.n as number;
  const a = await counted(ctx, "chaos-steps", "a", "a", () => n * 2);
  await ctx.step.sleep("nap", ctx.event.data.sleepMs as number);
  const b = await counted(ctx, "chaos-steps", "b", "b", () => a + 1);
  const c = await counted(ctx, "chaos-steps", "c", "c", () => a + b);
  return { a, b, c };
});

/**
 * Buffered checkpoints: six short steps whose results are written up to four at a time. A kill
 * before a write makes the steps not written run again (at the same attempt: none is blamed).
 */
const buffered = app.createFunction<ChaosData>({ id: "chaos-buffered", retries: 3, checkpointing: { bufferedSteps: 4, maxInterval: "2s" } }, { event: "chaos/buffered" }, async (ctx) => {
  const n = ctx.event.data.n as number;
  let sum = 0;
  for (const name of ["a", "b", "c", "d", "e", "f"]) {
    sum += await ctx.step.run(name, async () => {
      // The runner may aim a kill just after the third step reports (chaos/lib/kills.mjs).
      await hit(ctx.event.data, "chaos-buffered", name, ctx.attempt, ctx, name === "c");
      // Long enough for a kill to fall among the steps, before their results are written.
      await new Promise((resolve) => setTimeout(resolve, 150));
      return n;
    });
  }
  return { sum };
});

/** A step that fails its first `data.failures` attempts (RetryAfterError, `data.retryMs`), then a step after it. */
const retry = app.createFunction<ChaosData>({ id: "chaos-retry", retries: 3 }, { event: "chaos/retry" }, async (ctx) => {
  const failures = ctx.event.data.failures as number;
  const flaky = await ctx.step.run("flaky", async () => {
    const attempt = ctx.attempt;
    await hit(ctx.event.data, "chaos-retry", "flaky", attempt, ctx);
    if (attempt < failures) throw new RetryAfterError(`flaky fails attempt ${attempt}`, ctx.event.data.retryMs as number);
    return `ok at attempt ${attempt}`;
  });
  const after = await counted(ctx, "chaos-retry", "after", "after", () => "after");
  return { flaky, after };
});

/** An error outside any step on the first attempt: the handler is retried, the memoized step is not. */
const handlerRetry = app.createFunction<ChaosData>({ id: "chaos-handler-retry", retries: 2 }, { event: "chaos/handler-retry" }, async (ctx) => {
  const once = await counted(ctx, "chaos-handler-retry", "once", "once", () => "stored");
  if (ctx.attempt === 0) throw new RetryAfterError("outside any step", ctx.event.data.retryMs as number);
  return { once, attempt: ctx.attempt };
});

/**
 * A `sendEvent` chain: hop `data.hop` of `data.hops` does its work, naps `data.napMs`, then sends the
 * next hop with an id of its own (`<root>-h<hop>`), so a re-run of the send after a crash starts
 * nothing twice.
 */
const chain = app.createFunction<ChaosData>({ id: "chaos-chain", retries: 3 }, { event: "chaos/chain" }, async (ctx) => {
  const { hop, hops, root } = ctx.event.data as ChaosData & { hop: number; hops: number };
  const work = await counted(ctx, `chaos-chain@${hop}`, "work", "work", () => hop * 10);
  if (hop < hops) {
    await ctx.step.sleep("nap", ctx.event.data.napMs as number);
    const next = hop + 1;
    const sent = await ctx.step.sendEvent("next", { id: `${root}-h${next}`, name: "chaos/chain", data: { ...ctx.event.data, hop: next } });
    return { hop, work, sent: sent.ids };
  }
  return { hop, work, sent: [] };
});

/**
 * `sendEvent` without ids, so the engine derives them (sha256 of run id, step name, position):
 * `data.rounds` rounds of a counted step (`work`, `work:1`…; the runner may aim a kill just after
 * it) and a send (`emit`, `emit:1`…), with a sleep of `data.gapMs` between rounds. Round 0 sends
 * two events without an id around one with an id; each later round one without. Every event sent
 * starts a `chaos-derived-child` run.
 */
const derived = app.createFunction<ChaosData>({ id: "chaos-derived", retries: 3 }, { event: "chaos/derived" }, async (ctx) => {
  const { rounds, gapMs, root } = ctx.event.data as ChaosData & { rounds: number; gapMs: number };
  const sent: string[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round > 0) await ctx.step.sleep("gap", gapMs);
    await counted(ctx, "chaos-derived", "work", round === 0 ? "work" : `work:${round}`, () => round, true);
    const child = (slot: number) => ({ name: "chaos/derived-child", data: { ...ctx.event.data, slot } });
    const events = round === 0 ? [child(0), { id: `${root}-x`, ...child(1) }, child(2)] : [child(round + 2)];
    const { ids } = await ctx.step.sendEvent("emit", events);
    sent.push(...ids);
  }
  return { rounds, sent };
});
const derivedChild = app.createFunction<ChaosData>({ id: "chaos-derived-child", retries: 3 }, { event: "chaos/derived-child" }, async (ctx) => {
  const slot = ctx.event.data.slot as number;
  const got = await counted(ctx, `chaos-derived-child@${slot}`, "got", "got", () => slot);
  return { slot: got };
});

/** Fan-out: two functions on one event name. */
const fanA = app.createFunction<ChaosData>({ id: "chaos-fan-a", retries: 3 }, { event: "chaos/fanout" }, async (ctx) => {
  const a = await counted(ctx, "chaos-fan-a", "a", "a", () => `a:${ctx.event.data.n}`);
  await ctx.step.sleep("pause", 1000);
  const a2 = await counted(ctx, "chaos-fan-a", "a2", "a2", () => `${a}!`);
  return { a2 };
});
const fanB = app.createFunction<ChaosData>({ id: "chaos-fan-b", retries: 3 }, { event: "chaos/fanout" }, async (ctx) => {
  const b = await counted(ctx, "chaos-fan-b", "b", "b", () => `b:${ctx.event.data.n}`);
  const b2 = await counted(ctx, "chaos-fan-b", "b2", "b2", () => `${b}?`);
  return { b2 };
});

/** Parallel steps (one id, three calls: `p`, `p:1`, `p:2`), parallel sleeps, then a step that sums. */
const parallel = app.createFunction<ChaosData>({ id: "chaos-parallel", retries: 3 }, { event: "chaos/parallel" }, async (ctx) => {
  const squares = await Promise.all([0, 1, 2].map((i) => counted(ctx, "chaos-parallel", "p", i === 0 ? "p" : `p:${i}`, () => i * i)));
  await Promise.all([ctx.step.sleep("s1", ctx.event.data.sleepMs as number), ctx.step.sleep("s2", 1000)]);
  const sum = await counted(ctx, "chaos-parallel", "sum", "sum", () => squares.reduce((x, y) => x + y, 0));
  return { squares, sum };
});

/**
 * Sleeps `data.sleepMs`, then fails for good (NonRetriableError in a step); its onFailure runs as a
 * run of its own with a counted step. Retries are not 0: a kill must cost an attempt, not the run
 * (the doomed step fails for good at its first attempt that runs to the end anyway).
 */
const fails = app.createFunction<ChaosData>(
  {
    id: "chaos-fails",
    retries: 3,
    // onFailure gets the attempt of the step its invocation retries (or 0): the notify step's own.
    onFailure: async ({ event, step, attempt, runId }) => {
      const data = event.data.event.data as ChaosData;
      const notified = await step.run("notify", async () => {
        await hit(data, "chaos-fails-failure", "notify", attempt, { event, runId });
        return { failedRun: event.data.run_id };
      });
      return notified;
    },
  },
  { event: "chaos/fails" },
  async (ctx) => {
    await ctx.step.sleep("wait", ctx.event.data.sleepMs as number);
    await ctx.step.run("doomed", async () => {
      await hit(ctx.event.data, "chaos-fails", "doomed", ctx.attempt, ctx);
      throw new NonRetriableError("doomed on purpose");
    });
    return "unreachable";
  },
);

/**
 * A wait: a step, then `step.waitForEvent` for a `chaos/reply` whose `data.key` is the trigger's
 * (the runner sends one or two, some before the wait is stored: the look back finds those), then a
 * step that reports the reply's `data.v`.
 */
const waiting = app.createFunction<ChaosData>({ id: "chaos-wait", retries: 3 }, { event: "chaos/wait" }, async (ctx) => {
  const before = await counted(ctx, "chaos-wait", "before", "before", () => "before");
  const reply = await ctx.step.waitForEvent("reply", { event: "chaos/reply", match: "data.key", timeout: "5m", lookback: "5m" });
  const v = (reply?.data as { v?: unknown } | undefined)?.v ?? null;
  const got = await counted(ctx, "chaos-wait", "after", "after", () => v);
  return { before, reply: got };
});

/** Cancelled by a `chaos/cancel` with the trigger's `data.key`, which the runner sends during the sleep. */
const cancellable = app.createFunction<ChaosData>(
  { id: "chaos-cancel", retries: 3, cancelOn: [{ event: "chaos/cancel", match: "data.key" }] },
  { event: "chaos/cancellable" },
  async (ctx) => {
    const a = await counted(ctx, "chaos-cancel", "a", "a", () => "a");
    await ctx.step.sleep("nap", ctx.event.data.sleepMs as number);
    const b = await counted(ctx, "chaos-cancel", "b", "b", () => "b");
    return { a, b };
  },
);

/** At most 3 runs executing at once: a step that works `data.workMs` (1–2 s) after reporting, then another. */
const limited = app.createFunction<ChaosData>({ id: "chaos-limited", retries: 3, concurrency: 3 }, { event: "chaos/limited" }, async (ctx) => {
  const worked = await ctx.step.run("work", async () => {
    await hit(ctx.event.data, "chaos-limited", "work", ctx.attempt, ctx);
    await new Promise((resolve) => setTimeout(resolve, ctx.event.data.workMs as number));
    return "worked";
  });
  const done = await counted(ctx, "chaos-limited", "done", "done", () => "done");
  return { worked, done };
});

/**
 * Debounced and batched per root: the run starts from the coordinator's alarm 1.5 s after its
 * event (a batch's timeout), so kills come while debounces and batches are open; the run gets the
 * collected events, the root alone, once.
 */
const debounced = app.createFunction<ChaosData>(
  { id: "chaos-debounce", retries: 3, debounce: { period: "1500ms", key: "event.data.root", events: "all" } },
  { event: "chaos/debounced" },
  async (ctx) => ({ got: await counted(ctx, "chaos-debounce", "got", "got", () => ctx.events.map((event) => event.id)) }),
);
const batched = app.createFunction<ChaosData>(
  { id: "chaos-batch", retries: 3, batchEvents: { maxSize: 3, timeout: "1500ms", key: "event.data.root" } },
  { event: "chaos/batched" },
  async (ctx) => ({ got: await counted(ctx, "chaos-batch", "got", "got", () => ctx.events.map((event) => event.id)) }),
);

/**
 * A cron due every minute (the Scheduler's alarm fires it under `wrangler dev`). Its event carries
 * no counter, so the counter's URL comes from `CHAOS_COUNTER`, a var run.mjs writes into the config
 * it serves; the root is the scheduled time (`cron@<ISO time>`, from `event.ts`), so the runner
 * counts the runs of each scheduled minute.
 */
const everyMinute = app.createFunction({ id: "chaos-cron", retries: 3 }, { cron: "* * * * *" }, async (ctx) => {
  const counter = (workerEnv as { CHAOS_COUNTER?: string }).CHAOS_COUNTER;
  if (!counter) throw new NonRetriableError("CHAOS_COUNTER is not set: chaos/run.mjs writes it into the config it serves");
  const scheduledAt = new Date(ctx.event.ts).toISOString();
  await ctx.step.run("tick", async () => {
    await hit({ counter, root: `cron@${scheduledAt}` }, "chaos-cron", "tick", ctx.attempt, ctx);
    return scheduledAt;
  });
  return { scheduledAt };
});

const worker = serve({
  client: app,
  functions: [steps, buffered, retry, handlerRetry, chain, derived, derivedChild, fanA, fanB, parallel, fails, waiting, cancellable, limited, debounced, batched, everyMinute, ...flowFunctions],
});

/** The chaos Worker's bindings: Stepflare's, and STEPFLARE, a service binding to its own StepflareService. */
interface ChaosEnv extends Env {
  STEPFLARE: Service<StepflareService>;
}

/**
 * Stepflare's routes, and three that go through the service binding, as another Worker would:
 * `POST /chaos/rpc/send` (body: the events) calls `send`, `POST /chaos/rpc/invoke` (body:
 * `{ functionId, data }`) calls `invoke`; both answer what the call answered, with its status, or
 * a 503 with the error when the call throws (D1 or the Queue down). `GET /chaos/rpc/runs/:runId`
 * calls `getRun`, which reads the run's object (a run whose invoke could not index it included).
 * Two more read what the engine keeps for flow control, for the checks: `POST /chaos/flow` (body:
 * `[[functionId, option, key], …]`) answers each coordinator's state (`chaosState`), and
 * `POST /chaos/events` (body: event ids) when each was received and dispatched.
 */
export default {
  ...worker,
  async fetch(request: Request<unknown, IncomingRequestCfProperties>, env: ChaosEnv, ctx: ExecutionContext): Promise<Response> {
    const { pathname } = new URL(request.url);
    const call = async (answer: () => Promise<{ status: number }>) => {
      try {
        const answered = await answer();
        return Response.json(answered, { status: answered.status });
      } catch (err) {
        return Response.json({ error: String(err), status: 503 }, { status: 503 });
      }
    };
    if (request.method === "POST" && pathname === "/chaos/rpc/send") {
      const events: unknown = await request.json();
      return call(() => env.STEPFLARE.send(events));
    }
    if (request.method === "POST" && pathname === "/chaos/rpc/invoke") {
      const { functionId, data } = (await request.json()) as { functionId: string; data?: Record<string, unknown> };
      return call(() => env.STEPFLARE.invoke(functionId, data));
    }
    if (request.method === "POST" && pathname === "/chaos/flow") {
      // Coordinators by (function, option, key), named as the engine names them (worker/flow/admission.ts).
      const names = (await request.json()) as [string, string, string][];
      const flows = env.FLOWS as unknown as DurableObjectNamespace<FlowObject>;
      const states = await Promise.all(names.map(async (name) => ({ name, ...(await flows.get(flows.idFromName(JSON.stringify(name))).chaosState()) })));
      return Response.json({ data: states });
    }
    if (request.method === "POST" && pathname === "/chaos/events") {
      // When each event was received and dispatched, from the D1 event log of every shard (ids in the body).
      const ids = (await request.json()) as string[];
      const pages = await Promise.all(
        shardsOf(env).map(async (shard) => (await shard.prepare(`SELECT id, received_at, ${dispatchedAtSql()} AS dispatched_at FROM events WHERE id IN (SELECT value FROM json_each(?1))`).bind(JSON.stringify(ids)).all()).results),
      );
      return Response.json({ data: pages.flat() });
    }
    const run = /^\/chaos\/rpc\/runs\/([^/]+)$/.exec(pathname);
    if (request.method === "GET" && run) {
      const found = await env.STEPFLARE.getRun(run[1]!);
      return found ? Response.json({ data: found }) : Response.json({ error: "no such run" }, { status: 404 });
    }
    return worker.fetch!(request, env, ctx);
  },
};
