// The Worker the integration tests run: a user's entry of exactly the documented shape, with
// functions that record their side effects in a D1 table so tests can count them.
import { env } from "cloudflare:workers";
import { NonRetriableError, RetryAfterError, StepError, Stepflare } from "../sdk/index.ts";
import { serve } from "../worker/index.ts";

export * from "../worker/index.ts";

export const app = new Stepflare({ id: "test" });

/** Records one side effect under `key` (what a step would do to the outside world). */
async function effect(key: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(key).run();
}

const counted = app.createFunction({ id: "counted", retries: 3 }, { event: "test/counted" }, async ({ event, step, attempt }) => {
  const key = event.data.key as string;
  const a = await step.run("a", async () => {
    await effect(`${key}:a`);
    return "a";
  });
  await step.sleep("nap", event.data.sleep ?? "500ms");
  const b = await step.run("b", async () => {
    await effect(`${key}:b-attempt`);
    if (attempt < (event.data.failTimes ?? 0)) throw new RetryAfterError(`b fails on attempt ${attempt}`, 50);
    await effect(`${key}:b`);
    return "b";
  });
  const c = await step.run("c", async () => {
    await effect(`${key}:c`);
    return "c";
  });
  return [a, b, c].join("");
});

const fanoutA = app.createFunction({ id: "fanout-a" }, { event: "test/fanout" }, async ({ event }) => `a:${event.data.key}`);
const fanoutB = app.createFunction({ id: "fanout-b" }, { event: "test/fanout" }, async ({ event }) => `b:${event.data.key}`);

const chainStart = app.createFunction({ id: "chain-start" }, { event: "test/chain.start" }, async ({ event, step }) => {
  return step.sendEvent("next", { name: "test/chain.next", data: { key: event.data.key } });
});
const chainNext = app.createFunction({ id: "chain-next" }, { event: "test/chain.next" }, async ({ event }) => ({ reached: event.data.key }));

const failing = app.createFunction(
  {
    id: "failing",
    retries: 1,
    onFailure: async ({ event, error, step }) => {
      await step.run("record", () => effect(`${(event.data.event.data as { key: string }).key}:onFailure:${error.message}`));
      return { failedRun: event.data.run_id };
    },
  },
  { event: "test/failing" },
  async () => {
    throw new RetryAfterError("always broken", 50);
  },
);

const recovers = app.createFunction({ id: "recovers", retries: 2 }, { event: "test/recovers" }, async ({ event, step }) => {
  try {
    await step.run("doomed", async () => {
      await effect(`${event.data.key}:doomed`);
      throw new NonRetriableError("no way");
    });
    return "unreachable";
  } catch (err) {
    return err instanceof StepError ? `recovered from ${err.stepId}: ${err.error.message}` : "wrong error";
  }
});

const retriesHandler = app.createFunction({ id: "retries-handler", retries: 2 }, { event: "test/retries-handler" }, async ({ event, step, attempt }) => {
  const once = await step.run("once", async () => {
    await effect(`${event.data.key}:once`);
    return "stored";
  });
  if (attempt === 0) throw new RetryAfterError("outside any step", 50);
  return { once, attempt };
});

const parallel = app.createFunction({ id: "parallel" }, { event: "test/parallel" }, async ({ step }) => {
  const results = await Promise.all([1, 2, 3].map((n) => step.run("square", () => n * n)));
  await Promise.all([step.sleep("short", 100), step.sleep("long", 300)]);
  return results;
});

const wildcard = app.createFunction({ id: "wildcard" }, { event: "test/wild/*", if: "event.data.amount > 100" }, async ({ event }) => event.name);

const cancellable = app.createFunction({ id: "cancellable" }, { event: "test/cancellable" }, async ({ event, step }) => {
  await step.run("before", () => effect(`${event.data.key}:before`));
  await step.sleep("long-wait", "1h");
  await step.run("after", () => effect(`${event.data.key}:after`));
});

/** Each event misbehaves in its own way (data.mode); runs of the other modes must not notice. */
const isolated = app.createFunction({ id: "isolated", retries: 0, stepTimeout: "300ms" }, { event: "test/isolated" }, async ({ event, step }) => {
  const mode = event.data.mode as string;
  return step.run("misbehave", () => {
    if (mode === "non-error") throw { code: 42, reason: "a plain object" };
    if (mode === "string") throw "just a string";
    if (mode === "circular") {
      const value: Record<string, unknown> = { name: "loop" };
      value.self = value;
      return value;
    }
    if (mode === "huge") return "x".repeat(10 * 1024 * 1024);
    if (mode === "hang") return new Promise(() => {});
    return `ok:${event.data.key}`;
  });
});

const expressionFails = app.createFunction(
  { id: "expression-fails" },
  { event: "test/expression", if: "event.data.order.total > 100" },
  async ({ event }) => `big order ${event.data.order.total}`,
);

/** A step output over SQLite's 2 MB per value (stored in parts), memoized across a sleep. */
const bigOutput = app.createFunction({ id: "big-output" }, { event: "test/big-output" }, async ({ event, step }) => {
  const big = await step.run("big", async () => {
    await effect(`${event.data.key}:big`);
    return "é".repeat(3 * 1024 * 1024 / 2 - 8);
  });
  await step.sleep("nap", 50);
  if (event.data.returnTooMuch) return "x".repeat(5 * 1024 * 1024);
  return { length: big.length, intact: big === "é".repeat(big.length) };
});

/** A failure handler for "failing" runs that fails itself: it must not trigger itself again. */
const failureWatcher = app.createFunction(
  { id: "failure-watcher", retries: 0 },
  { event: "inngest/function.failed", if: "event.data.function_id == 'isolated'" },
  async () => {
    throw new NonRetriableError("the watcher fails too");
  },
);

const logs = app.createFunction({ id: "logs" }, { event: "test/logs" }, async ({ logger, event }) => {
  logger.info("hello from a run", { key: event.data.key });
  return "logged";
});

export default serve({
  client: app,
  functions: [counted, fanoutA, fanoutB, chainStart, chainNext, failing, recovers, retriesHandler, parallel, wildcard, cancellable, isolated, expressionFails, bigOutput, failureWatcher, logs],
});
