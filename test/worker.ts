// The Worker the integration tests run: a user's entry of exactly the documented shape, with
// functions that record their side effects in a D1 table so tests can count them.
import { env } from "cloudflare:workers";
import { NonRetriableError, RetryAfterError, StepError, Stepflare } from "../sdk/index.ts";
import { serve } from "../worker/index.ts";
import { killCurrentRunObject } from "../worker/platform/faults.ts";
import { coordinationFunctions } from "./coordination.functions.ts";
import { flowFunctions } from "./flow.functions.ts";
import { guardFunctions } from "./guards.functions.ts";
import { compatFunctions } from "./compat.functions.ts";
import { streamFunctions } from "./stream.functions.ts";
import { largeValuesFunctions } from "./largeValues.functions.ts";
import { bufferedFunctions } from "./buffered.functions.ts";
import { functions as v4docsFunctions } from "./compat.v4docs.functions.ts";
import { handlingStepErrors, stepInvokeNotFound } from "./inngestSuite.functions.ts";
import { v3OrderReceipt } from "./inngestSuite.v3.functions.ts";

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
/** Issue 20: values past one SQLite value's 2 MB: a batch of large events, and a send of them. */
const largeBatch = app.createFunction({ id: "large-batch", batchEvents: { maxSize: 5, timeout: "5s", key: "event.data.key" } }, { event: "test/large.batched" }, async ({ events }) => ({
  count: events.length,
  chars: events.reduce((total, e) => total + (e.data.pad as string).length, 0),
}));
const largeSend = app.createFunction({ id: "large-send" }, { event: "test/large.send" }, async ({ event, step }) => {
  const { ids } = await step.sendEvent(
    "send",
    Array.from({ length: event.data.count as number }, (_, i) => ({ name: "test/large.sent", data: { i, pad: "x".repeat(450_000) } })),
  );
  return { ids };
});

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

/** Waits `ms` inside a step body or the handler. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Issue 9, item 1: the handler rejects while a step body is still running. */
const chargeWhileRejecting = app.createFunction({ id: "charge-while-rejecting", retries: 2 }, { event: "test/charge-while-rejecting" }, async ({ event, step }) => {
  const key = event.data.key as string;
  await Promise.all([
    step.run("charge", async () => {
      await effect(`${key}:charge`);
      await pause(500);
      return "charged";
    }),
    pause(10).then(() => {
      throw new RetryAfterError("the order is invalid", 50);
    }),
  ]);
});

/** Issue 9, item 2: a race of two steps, then a suspension, then code that depends on the winner. */
const raceThenSleep = app.createFunction({ id: "race-then-sleep" }, { event: "test/race-then-sleep" }, async ({ step }) => {
  const winner = await Promise.race([
    step.run("slow", async () => {
      await pause(300);
      return "slow";
    }),
    step.run("fast", () => "fast"),
  ]);
  await step.sleep("nap", 50);
  const work = await step.run("work", () => "work");
  return `${work}+${winner}`;
});

/** Issue 9, item 3: a long first invocation that throws RetryAfterError outside any step. */
const longThenRetryLater = app.createFunction({ id: "long-then-retry-later", retries: 2 }, { event: "test/long-then-retry-later" }, async ({ event, step }) => {
  await step.run("slow", () => pause(1500));
  await effect(`${event.data.key}:throws`);
  throw new RetryAfterError("rate limited", "1h");
});

/** Issue 9, item 4: a call outside steps that fails once after each of three steps, with retries: 1. */
const flakyBetweenSteps = app.createFunction({ id: "flaky-between-steps", retries: 1 }, { event: "test/flaky-between-steps" }, async ({ event, step }) => {
  const key = event.data.key as string;
  for (const name of ["a", "b", "c"]) {
    await step.run(name, () => name);
    const calls = await env.DB.prepare("SELECT COUNT(*) AS n FROM test_effects WHERE key = ?1").bind(`${key}:flaky-${name}`).first<{ n: number }>();
    await effect(`${key}:flaky-${name}`);
    if ((calls?.n ?? 0) === 0) throw new RetryAfterError(`flaky after ${name}`, 50);
  }
  return "done";
});

/** Issue 9, items 5 and 6: sending no events, and sending an event with a reserved name. */
const sendsNothing = app.createFunction({ id: "sends-nothing" }, { event: "test/sends-nothing" }, async ({ step }) => step.sendEvent("none", []));
const forgesFailure = app.createFunction({ id: "forges-failure", retries: 3 }, { event: "test/forges-failure" }, async ({ step }) =>
  step.sendEvent("forge", { name: "inngest/function.failed", data: { function_id: "failing" } }),
);

/** Issue 9, item 9: a step that kills its Durable Object, as a CPU or memory limit would. */
const diesInStep = app.createFunction({ id: "dies-in-step", retries: 0 }, { event: "test/dies-in-step" }, async ({ event, step }) => {
  await step.run("die", async () => {
    await effect(`${event.data.key}:die`);
    killCurrentRunObject();
  });
});

/**
 * Issue 21: five steps under buffered checkpoints of three (`checkpointing.bufferedSteps`): a, b and c
 * are written as one row when d's result arrives, d and e on the end's row. With `data.die`, the third
 * kills its object the first time, before the buffered results of the first two are written.
 */
const buffered = app.createFunction(
  { id: "buffered-steps", retries: 1, checkpointing: { bufferedSteps: 3, maxInterval: "10s" } },
  { event: "test/buffered-steps" },
  async ({ event, step }) => {
    const key = event.data.key as string;
    const results: string[] = [];
    for (const name of ["a", "b", "c", "d", "e"]) {
      results.push(
        await step.run(name, async () => {
          await effect(`${key}:${name}`);
          if (name === "c" && event.data.die && (await effectCountIn(`${key}:c`)) === 1) killCurrentRunObject();
          return name;
        }),
      );
    }
    return results.join("");
  },
);

async function effectCountIn(key: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM test_effects WHERE key = ?1").bind(key).first<{ n: number }>())?.n ?? 0;
}

/** Issue 9, item 9: a step that kills its object at once, in the turn its invocation began. */
const diesAtOnce = app.createFunction({ id: "dies-at-once", retries: 0 }, { event: "test/dies-at-once" }, async ({ step }) => {
  await step.run("die", () => killCurrentRunObject());
});

/** Issue 21: a step after a sleep kills its object: the invocation its alarm woke dies in it. */
const diesAfterSleep = app.createFunction({ id: "dies-after-sleep", retries: 0 }, { event: "test/dies-after-sleep" }, async ({ event, step }) => {
  await step.sleep("nap", "1s");
  await step.run("die", async () => {
    await effect(`${event.data.key}:die`);
    killCurrentRunObject();
  });
});

/** Issue 9, item 9: code outside steps that kills the object every time (a synchronous loop, say). */
const diesOutsideSteps = app.createFunction({ id: "dies-outside-steps", retries: 0 }, { event: "test/dies-outside-steps" }, async ({ event }) => {
  await effect(`${event.data.key}:handler`);
  killCurrentRunObject();
});

/** Issue 9, items 7 and 8: fails for good after a pause, so an outage or a cancel can come first. */
const failsAfterPause = app.createFunction(
  {
    id: "fails-after-pause",
    retries: 0,
    onFailure: async ({ event, step }) => {
      await step.run("record", () => effect(`${(event.data.event.data as { key: string }).key}:onFailure`));
    },
  },
  { event: "test/fails-after-pause" },
  async ({ event, step }) => {
    await step.run("work", () => pause(event.data.pauseMs ?? 800));
    throw new NonRetriableError("broken for good");
  },
);

/** Issue 9, item 8: sends an event (without an id) after a pause, so an outage can come first. */
const sendsAfterPause = app.createFunction({ id: "sends-after-pause" }, { event: "test/sends-after-pause" }, async ({ event, step }) => {
  await step.run("work", () => pause(800));
  return step.sendEvent("next", { name: "test/chain.next", data: { key: event.data.key } });
});

/** Issue 11: a weekly report on a cron in Paris time, that can also be asked for by an event. */
/** A step that fails until the test writes `<key>:fixed` (the stuck-run tests: a step that keeps retrying). */
const keepsFailing = app.createFunction({ id: "keeps-failing", retries: 10 }, { event: "test/keeps-failing" }, async ({ event, step }) =>
  step.run("flaky", async () => {
    if (!(await env.DB.prepare("SELECT 1 FROM test_effects WHERE key = ?1").bind(`${event.data.key}:fixed`).first())) throw new Error("still broken");
    return "fixed";
  }),
);

const weeklyReport = app.createFunction(
  { id: "weekly-report" },
  [{ cron: "TZ=Europe/Paris 0 9 * * 1" }, { event: "test/report.requested" }],
  async ({ event, step }) => {
    const report = await step.run("compile", () => ({ for: event.name === "inngest/scheduled.timer" ? "schedule" : "request" }));
    return { ...report, cron: (event.data as { cron?: string }).cron ?? null, ts: event.ts };
  },
);

/** Issue 11: the same cron string as wrangler.toml's trigger, so that trigger fires it directly. */
const everyMinute = app.createFunction({ id: "every-minute" }, { cron: "* * * * *" }, async ({ event }) => ({ cron: event.data.cron, ts: event.ts }));

export default serve({
  client: app,
  functions: [largeBatch, largeSend, counted, fanoutA, fanoutB, chainStart, chainNext, failing, recovers, retriesHandler, parallel, wildcard, cancellable, isolated, expressionFails, bigOutput, failureWatcher, logs,
    chargeWhileRejecting, raceThenSleep, longThenRetryLater, flakyBetweenSteps, sendsNothing, forgesFailure, diesInStep, buffered, diesAtOnce, diesAfterSleep, diesOutsideSteps, failsAfterPause, sendsAfterPause, weeklyReport, everyMinute, keepsFailing,
    ...coordinationFunctions(app), ...flowFunctions(app), ...guardFunctions(app), ...compatFunctions(app), ...streamFunctions(app), ...largeValuesFunctions(app), ...bufferedFunctions(app), ...v4docsFunctions,
    // Inngest's retries: 1 would wait 15 s or more of backoff per failed step here; sdk/inngestSuite.test.ts runs it with a fake clock.
    handlingStepErrors(app, { retries: 0 }), stepInvokeNotFound(app), v3OrderReceipt],
});
