// The Stepflare Worker `npm run bench` measures: a user's entry of the documented shape whose
// functions report to the bench's counter (a Node HTTP server on 127.0.0.1, its URL in
// `event.data.counter`). Each run's last step calls the counter, so the bench sees completion
// exactly without polling; bench/cfwf/worker.ts holds the same work as Cloudflare Workflows.
import { Stepflare } from "../../sdk/index.ts";
import type { Env } from "../../worker/platform/env.ts";
import { serve } from "../../worker/index.ts";
import type { QueueMessage } from "../../worker/queue/messages.ts";

export * from "../../worker/index.ts";

const app = new Stepflare({ id: "bench" });

/** What every benchmark event carries: where the counter is, which measurement, which run. */
interface BenchData {
  counter: string;
  tag: string;
  i: number;
  steps?: number;
  /** Scenario 9: the value of `data.key` the run's wait matches on. */
  key?: string;
  /** Scenario 14: the length of the large step's output. */
  bytes?: number;
}

/** Tells the counter that run `key` (by default `data.i`) of measurement `tag` got here; `extra` carries timings. */
async function hit(data: BenchData, extra: Record<string, number> = {}, key: string | number = data.i): Promise<void> {
  const res = await fetch(`${data.counter}/hit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tag: data.tag, key, ...extra }),
  });
  if (!res.ok) throw new Error(`counter answered ${res.status}`);
  await res.arrayBuffer();
}

/** Scenario 1: one step that calls the counter. */
const oneStep = app.createFunction<BenchData>({ id: "bench-one-step" }, { event: "bench/one-step" }, async ({ event, step }) => {
  await step.run("count", async () => {
    await hit(event.data);
    return "counted";
  });
  return { i: event.data.i };
});

/** Scenario 10: scenario 1's function under a concurrency limit of 10. */
const concurrencyLimited = app.createFunction<BenchData>({ id: "bench-concurrency-10", concurrency: 10 }, { event: "bench/concurrency-10" }, async ({ event, step }) => {
  await step.run("count", async () => {
    await hit(event.data);
    return "counted";
  });
  return { i: event.data.i };
});

/** Scenarios 2 and 3: `data.steps` sequential steps; the last one calls the counter. */
const nStepsHandler = async ({ event, step }: { event: { data: BenchData }; step: { run<T>(id: string, fn: () => Promise<T>): Promise<T> } }) => {
  const steps = event.data.steps ?? 1;
  let sum = 0;
  for (let n = 0; n < steps; n++) {
    sum += await step.run(`s${n}`, async () => {
      if (n === steps - 1) await hit(event.data);
      return n;
    });
  }
  return { steps, sum };
};
const nSteps = app.createFunction<BenchData>({ id: "bench-n-steps" }, { event: "bench/n-steps" }, nStepsHandler);

/** Scenario 2d: scenario 2c's run under buffered checkpoints (up to 20 step results in one write). */
const nStepsBuffered = app.createFunction<BenchData>({ id: "bench-n-steps-buffered", checkpointing: { bufferedSteps: 20 } }, { event: "bench/n-steps-buffered" }, nStepsHandler);

/** Scenario 4: the first step reports the time it ran (the bench subtracts the time it sent the event). */
const firstStep = app.createFunction<BenchData>({ id: "bench-first-step" }, { event: "bench/first-step" }, async ({ event, step }) => {
  await step.run("first", async () => {
    await hit(event.data, { t: Date.now() });
    return "first";
  });
  return { i: event.data.i };
});

/** Scenario 10b: scenario 4's function under a throttle it never reaches (1,000 starts a minute). */
const throttledFirstStep = app.createFunction<BenchData>({ id: "bench-throttled", throttle: { limit: 1000, period: "1m" } }, { event: "bench/throttled" }, async ({ event, step }) => {
  await step.run("first", async () => {
    await hit(event.data, { t: Date.now() });
    return "first";
  });
  return { i: event.data.i };
});

/**
 * Scenario 5: plans its wake-up 1 s ahead (a memoized step), sleeps until then, and reports how late
 * it resumed: now − planned wake time. Measured against the instant the run asked to wake, like the
 * floor's alarm, so the time between steps before the sleep does not count as lateness.
 */
const sleeper = app.createFunction<BenchData>({ id: "bench-sleeper" }, { event: "bench/sleeper" }, async ({ event, step }) => {
  const wakeAt = await step.run("plan", () => Date.now() + 1000);
  await step.sleepUntil("nap", wakeAt);
  const lateness = await step.run("report", async () => {
    const late = Date.now() - wakeAt;
    await hit(event.data, { lateness: late });
    return late;
  });
  return { lateness };
});

/**
 * Scenario 5b: `step.sleep("1s")` after a first step that records its time; reports now − (that time
 * + 1 s), so the time from the first step to the sleep call counts too.
 */
const sleepFromStart = app.createFunction<BenchData>({ id: "bench-sleep-from-start" }, { event: "bench/sleep-from-start" }, async ({ event, step }) => {
  const start = await step.run("start", () => Date.now());
  await step.sleep("nap", "1s");
  const lateness = await step.run("report", async () => {
    const late = Date.now() - (start + 1000);
    await hit(event.data, { lateness: late });
    return late;
  });
  return { lateness };
});

/**
 * Scenario 6: what each ingested event starts, a run with no step that tells the counter its event
 * id, so the bench knows exactly which accepted events started their run.
 */
const ingestNoop = app.createFunction<BenchData>({ id: "bench-ingest-noop" }, { event: "bench/ingest" }, async ({ event }) => {
  await hit(event.data, {}, event.id);
  return "ok";
});

/** Scenario 8: the child, one step; started only by step.invoke (its event is never sent). */
const invoked = app.createFunction<{ i: number }>({ id: "bench-invoked" }, { event: "bench/invoked.never-sent" }, async ({ event, step }) => {
  return step.run("double", () => ({ doubled: event.data.i * 2 }));
});

/** Scenario 8: invokes the one-step child; the step after the invoke reports the time it ran. */
const invoker = app.createFunction<BenchData>({ id: "bench-invoker" }, { event: "bench/invoker" }, async ({ event, step }) => {
  const child = await step.invoke<{ doubled: number }>("child", { function: invoked, data: { i: event.data.i } });
  await step.run("after", async () => {
    await hit(event.data, { t: Date.now() });
    return "after";
  });
  return { i: event.data.i, child };
});

/** The event scenario 9's waits listen for (bench/scenarios/waits.mjs sends it): `data.key` says which run it resumes. */
const WAIT_EVENT = "bench/wait.resolve";

/**
 * Scenario 9: waits for a `bench/wait.resolve` whose `data.key` is its own trigger's; the step
 * after the wait reports the time it ran. The waits that are never resolved (the background) are
 * runs of this function too, with other keys.
 */
const waiter = app.createFunction<BenchData>({ id: "bench-waiter" }, { event: "bench/waiter" }, async ({ event, step }) => {
  const resolvedBy = await step.waitForEvent("wait", { event: WAIT_EVENT, match: "data.key", timeout: "1h" });
  await step.run("resumed", async () => {
    await hit(event.data, { t: Date.now() });
    return "resumed";
  });
  return { i: event.data.i, resolvedBy: resolvedBy?.id ?? null };
});

/** Scenario 14: a step whose output is `data.bytes` long (3 MiB goes to R2), read back by the replay after a sleep. */
const largeStep = app.createFunction<BenchData>({ id: "bench-large-step" }, { event: "bench/large-step" }, async ({ event, step }) => {
  const output = await step.run("large", async () => "x".repeat(event.data.bytes ?? 0));
  await step.sleep("nap", 1);
  await step.run("count", async () => {
    await hit(event.data);
    return "counted";
  });
  return { length: output.length };
});

const handler = serve({ client: app, functions: [largeStep, oneStep, nSteps, nStepsBuffered, firstStep, sleeper, sleepFromStart, ingestNoop, invoked, invoker, waiter, concurrencyLimited, throttledFirstStep] });

/**
 * The bench's own routes, outside timing: `GET /bench/waits?event=<name>&key=<match key prefix>`
 * answers `{ count }`, the open waits of that event name in D1's waits index whose match key starts
 * with the prefix (`data.key="t7-` for a round's targets); `GET /bench/d1-size` answers `{ bytes }`,
 * the D1 database's size as D1 reports it after a query (`meta.size_after`: the SQLite file's pages,
 * what counts against the 10 GB a database may hold; bench/capacity.mjs). Everything else goes to Stepflare.
 */
export default {
  ...handler,
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/bench/waits") {
      const prefix = url.searchParams.get("key") ?? "";
      const row = await env.DB.prepare("SELECT COUNT(*) AS count FROM waits WHERE kind = 'wait' AND event_name = ?1 AND substr(match_key, 1, ?2) = ?3")
        .bind(url.searchParams.get("event") ?? "", prefix.length, prefix)
        .first<{ count: number }>();
      return Response.json({ count: row?.count ?? 0 });
    }
    if (request.method === "GET" && url.pathname === "/bench/d1-size") {
      const { meta } = await env.DB.prepare("SELECT 1").run();
      return Response.json({ bytes: meta.size_after });
    }
    return handler.fetch!(request, env, ctx);
  },
} satisfies ExportedHandler<Env, QueueMessage>;
