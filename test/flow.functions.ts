// Functions of the flow-control tests (test/flow.test.ts).
import { env } from "cloudflare:workers";
import type { Stepflare } from "../sdk/index.ts";

/** Records that run `key` executed between `start` and `end` (ms), for overlap checks. */
async function span(group: string, start: number, end: number, label: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(JSON.stringify({ group, start, end, label })).run();
}

/** Waits until the test opens `gate` (a row of test_effects), for at most 2 minutes. */
async function gateOpens(gate: string): Promise<void> {
  // Longer than any wait of the tests that hold a gate (60 s, under a 120 s test timeout): a gate that gave
  // up sooner let its run free its slot while a loaded machine still queued the others (the priority test).
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (await env.DB.prepare("SELECT 1 FROM test_effects WHERE key = ?1").bind(gate).first()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export function flowFunctions(app: Stepflare) {
  const idempotent = app.createFunction({ id: "flow-idempotent", idempotency: "event.data.orderId" }, { event: "test/flow.idempotent" }, async ({ event }) => ({ orderId: event.data.orderId }));

  const rateLimited = app.createFunction(
    { id: "flow-rate-limited", rateLimit: { limit: 2, period: "1m", key: "event.data.user" } },
    { event: "test/flow.rate-limited" },
    async ({ event }) => ({ n: event.data.n }),
  );

  const throttled = app.createFunction(
    { id: "flow-throttled", throttle: { limit: 2, period: "10s", burst: 1, key: "event.data.group" } },
    { event: "test/flow.throttled" },
    async ({ event }) => ({ n: event.data.n }),
  );

  // The same pace stretched: a waiting run's turn stays minutes away, however slowly a loaded machine runs the test.
  const throttledSlowly = app.createFunction(
    { id: "flow-throttled-slowly", throttle: { limit: 2, period: "10m", burst: 1, key: "event.data.group" } },
    { event: "test/flow.throttled-slowly" },
    async ({ event }) => ({ n: event.data.n }),
  );

  // One start a second per group; a run's `priority` moves it up the queue of runs waiting for their start.
  const throttledByPriority = app.createFunction(
    { id: "flow-throttled-priority", throttle: { limit: 1, period: "1s", key: "event.data.group" }, priority: { run: "event.data.priority" } },
    { event: "test/flow.throttled-priority" },
    async ({ event }) => ({ n: event.data.n, startedAt: Date.now() }),
  );

  const debounced = app.createFunction(
    { id: "flow-debounced", debounce: { period: "1s", key: "event.data.key" } },
    { event: "test/flow.debounced" },
    async ({ event, events }) => ({ last: event.data.n, count: events.length }),
  );

  const debouncedAll = app.createFunction(
    { id: "flow-debounced-all", debounce: { period: "1s", key: "event.data.key", events: "all" } },
    { event: "test/flow.debounced-all" },
    async ({ events }) => ({ ns: events.map((e) => e.data.n) }),
  );

  const batched = app.createFunction(
    { id: "flow-batched", batchEvents: { maxSize: 3, timeout: "1s", key: "event.data.key" } },
    { event: "test/flow.batched" },
    async ({ event, events }) => ({ first: event.data.n, ns: events.map((e) => e.data.n) }),
  );

  const batchedSlowly = app.createFunction(
    { id: "flow-batched-slowly", batchEvents: { maxSize: 3, timeout: "10s", key: "event.data.key" } },
    { event: "test/flow.batched-slowly" },
    async ({ events }) => ({ ns: events.map((e) => e.data.n) }),
  );

  const limited = app.createFunction(
    { id: "flow-concurrency", concurrency: [{ limit: 5 }, { limit: 2, key: "event.data.tenant" }], priority: { run: "event.data.priority" } },
    { event: "test/flow.concurrency" },
    async ({ event, step }) => {
      await step.run("work", async () => {
        const start = Date.now();
        // A gated run holds its slot until the test opens its gate; others for `ms`.
        if (event.data.gate) await gateOpens(event.data.gate);
        else await new Promise((resolve) => setTimeout(resolve, event.data.ms ?? 150));
        await span(event.data.group, start, Date.now(), `${event.data.tenant}:${event.data.n}`);
      });
      // A sleeping run holds no slot.
      if (event.data.nap) await step.sleep("nap", event.data.nap);
    },
  );

  const singletonSkip = app.createFunction({ id: "flow-singleton-skip", singleton: { key: "event.data.key", mode: "skip" } }, { event: "test/flow.singleton-skip" }, async ({ event, step }) => {
    await step.sleep("hold", "1s");
    return { n: event.data.n };
  });

  const singletonCancel = app.createFunction({ id: "flow-singleton-cancel", singleton: { key: "event.data.key", mode: "cancel" } }, { event: "test/flow.singleton-cancel" }, async ({ event, step }) => {
    await step.sleep("hold", "1h");
    return { n: event.data.n };
  });

  const paused = app.createFunction({ id: "flow-paused" }, { event: "test/flow.paused" }, async ({ event }) => ({ n: event.data.n }));

  // One at a time per group, and a run that waits for its slot longer than 2 s never starts.
  const startBounded = app.createFunction(
    { id: "flow-start-bounded", concurrency: { limit: 1, key: "event.data.group" }, timeouts: { start: "2s" } },
    { event: "test/flow.start-bounded" },
    async ({ event, step }) => {
      await step.run("work", async () => {
        if (event.data.gate) await gateOpens(event.data.gate);
        return event.data.n;
      });
    },
  );

  // One at a time per group, with no start timeout: a run queued behind a gated one waits as long as the test needs.
  const oneAtATime = app.createFunction(
    { id: "flow-one-at-a-time", concurrency: { limit: 1, key: "event.data.group" } },
    { event: "test/flow.one-at-a-time" },
    async ({ event, step }) => step.run("work", async () => {
      if (event.data.gate) await gateOpens(event.data.gate);
      return event.data.n;
    }),
  );

  // A run under a concurrency limit that holds at its gate, then waits for an event.
  const waitsUnderLimit = app.createFunction(
    { id: "flow-waits-under-limit", concurrency: { limit: 5 } },
    { event: "test/flow.waits-under-limit" },
    async ({ event, step }) => {
      await step.run("hold", () => gateOpens(event.data.gate));
      const reply = await step.waitForEvent("reply", { event: "test/flow.waits-under-limit.reply", match: "data.key", timeout: "1h" });
      return { key: event.data.key, replied: reply !== null };
    },
  );

  // Pausing at every way in: an event, a cron, an invoke, a manual trigger, a rerun.
  const pausedEverywhere = app.createFunction(
    { id: "flow-paused-everywhere" },
    [{ event: "test/flow.paused-everywhere" }, { cron: "0 0 1 1 *" }],
    async ({ event }) => ({ n: event.data.n ?? null }),
  );
  const invokesPaused = app.createFunction({ id: "flow-invokes-paused" }, { event: "test/flow.invokes-paused" }, async ({ step }) => {
    try {
      return { output: await step.invoke("call", { function: "flow-paused-everywhere", data: { n: 1 } }) };
    } catch (err) {
      return { caught: (err as Error).message };
    }
  });

  return [batchedSlowly, pausedEverywhere, invokesPaused, paused, limited, singletonSkip, singletonCancel, idempotent, rateLimited, throttled, throttledSlowly, throttledByPriority, debounced, debouncedAll, batched, startBounded, oneAtATime, waitsUnderLimit];
}
