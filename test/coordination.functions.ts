// Functions of the coordination tests (test/coordination.test.ts): waits, invoke, cancelOn,
// onCancel and timeouts. They record side effects in D1's test_effects, as test/worker.ts's do.
import { env } from "cloudflare:workers";
import { NonRetriableError, RetryAfterError, StepError, type Stepflare } from "../sdk/index.ts";

async function effect(key: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(key).run();
}

export function coordinationFunctions(app: Stepflare) {
  const waitsByMatch = app.createFunction({ id: "waits-match" }, { event: "test/signup" }, async ({ event, step }) => {
    const activated = await step.waitForEvent("activation", { event: "test/activated", match: "data.userId", timeout: event.data.timeout ?? "1h" });
    await step.run("after", () => effect(`${event.data.userId}:after`));
    return { activated: activated?.data ?? null };
  });

  const waitsByIf = app.createFunction({ id: "waits-if" }, { event: "test/order" }, async ({ event, step }) => {
    const approval = await step.waitForEvent("approval", {
      event: "test/approved",
      if: "async.data.orderId == event.data.orderId && async.data.amount >= event.data.min",
      timeout: "1h",
    });
    return approval?.data ?? null;
  });

  const waitsWithLookback = app.createFunction({ id: "waits-lookback" }, { event: "test/ask" }, async ({ event, step }) => {
    const reply = await step.waitForEvent("reply", { event: "test/reply", match: "data.key", timeout: "1h", lookback: event.data.lookback ?? "5m" });
    return reply?.data ?? null;
  });

  const waitsWhileBusy = app.createFunction({ id: "waits-while-busy" }, { event: "test/busy" }, async ({ event, step }) => {
    const [reply] = await Promise.all([
      step.waitForEvent("reply", { event: "test/busy.reply", match: "data.key", timeout: "1h" }),
      step.run("slow", async () => {
        await effect(`${event.data.key}:slow-started`);
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }),
    ]);
    return reply?.data ?? null;
  });

  const waitsAny = app.createFunction({ id: "waits-any" }, { event: "test/any" }, async ({ step }) => {
    const first = await step.waitForEvent("first", { events: ["test/any.a", "test/any.b"], mode: "any", match: "data.key", timeout: "1h" });
    return first ? { name: first.name, data: first.data } : null;
  });

  const waitsAll = app.createFunction({ id: "waits-all" }, { event: "test/all" }, async ({ step }) => {
    const all = await step.waitForEvent("both", { events: ["test/all.a", { event: "test/all.b", if: "async.data.key == event.data.key && async.data.ok == true" }], mode: "all", match: "data.key", timeout: "1h" });
    return all ? all.map((e) => e.name) : null;
  });

  const invokeChild = app.createFunction({ id: "invoke-child", retries: 0 }, { event: "test/invoke-child.direct" }, async ({ event, step }) => {
    await step.run("count", () => effect(`${event.data.key}:child`));
    if (event.data.fail) throw new NonRetriableError("the child fails");
    if (event.data.sleep) await step.sleep("slow", event.data.sleep);
    return { doubled: (event.data.n as number) * 2 };
  });

  const invokeParent = app.createFunction({ id: "invoke-parent" }, { event: "test/invoke" }, async ({ event, step }) => {
    try {
      const result = await step.invoke("call-child", { function: invokeChild, data: event.data, ...(event.data.timeout ? { timeout: event.data.timeout } : {}) });
      return { result };
    } catch (err) {
      return { caught: err instanceof StepError ? err.error.name + ": " + err.error.message : String(err) };
    }
  });

  const invokeThenFlaky = app.createFunction({ id: "invoke-then-flaky", retries: 2 }, { event: "test/invoke-flaky" }, async ({ event, step, attempt }) => {
    const result = await step.invoke("call-child", { function: invokeChild, data: { key: event.data.key, n: 5 } });
    // Fails once after the invoke: the retry replays it and must start no second child.
    if (attempt === 0) throw new RetryAfterError("flaky after the invoke", 50);
    return result;
  });

  const invokeUnknown = app.createFunction({ id: "invoke-unknown" }, { event: "test/invoke-unknown" }, async ({ step }) => {
    return step.invoke("call", { function: "no-such-function", data: {} });
  });

  const cancelOnEvent = app.createFunction(
    {
      id: "cancel-on",
      cancelOn: [{ event: "test/cancel", match: "data.key" }],
      onCancel: async ({ event, reason, step }) => {
        await step.run("record", () => effect(`${(event.data.event.data as { key: string }).key}:onCancel:${reason.type}`));
      },
    },
    { event: "test/cancel-on.start" },
    async ({ event, step }) => {
      const key = event.data.key as string;
      await step.run("first", () => effect(`${key}:first`));
      if (event.data.mode === "wait") await step.waitForEvent("never", { event: "test/never", timeout: "1h" });
      else if (event.data.mode === "step") {
        await step.run("slow", async () => {
          await effect(`${key}:slow-started`);
          await new Promise((resolve) => setTimeout(resolve, 3000));
          return "slow";
        });
      } else await step.sleep("nap", "1h");
      await step.run("last", () => effect(`${key}:last`));
    },
  );

  const finishTimeout = app.createFunction({ id: "timeouts-finish", timeouts: { finish: "1s" } }, { event: "test/timeouts.finish" }, async ({ event, step }) => {
    await step.run("first", () => effect(`${event.data.key}:first`));
    await step.sleep("nap", "1h");
    await step.run("last", () => effect(`${event.data.key}:last`));
  });

  const startTimeout = app.createFunction({ id: "timeouts-start", timeouts: { start: "1s" } }, { event: "test/timeouts.start" }, async ({ event, step }) => {
    await step.run("work", () => effect(`${event.data.key}:work`));
  });

  const bulkSleeper = app.createFunction({ id: "bulk-sleeper" }, { event: "test/bulk.sleep" }, async ({ step }) => {
    await step.sleep("nap", "1h");
  });

  const sendsLater = app.createFunction({ id: "sends-later" }, { event: "test/sends-later" }, async ({ event, step }) => {
    return step.sendEvent("later", { name: "test/delayed.target", data: { key: event.data.key }, ts: event.data.at as number });
  });
  const delayedTarget = app.createFunction({ id: "delayed-target" }, { event: "test/delayed.target" }, async ({ event }) => ({ key: event.data.key }));

  /**
   * A wait whose options the trigger gives (`data.wait`), for test/waits.test.ts; with `data.hold`, a
   * step beside it keeps the invocation running until the test records `<key>:release`.
   */
  const waitsGiven = app.createFunction({ id: "waits-given" }, { event: "test/waits.given" }, async ({ event, step }) => {
    const key = event.data.key as string;
    const [reply] = await Promise.all([
      step.waitForEvent("reply", event.data.wait),
      event.data.hold
        ? step.run("hold", async () => {
            await effect(`${key}:holding`);
            const released = async () => (await env.DB.prepare("SELECT 1 FROM test_effects WHERE key = ?1").bind(`${key}:release`).first()) !== null;
            for (const deadline = Date.now() + 30_000; Date.now() < deadline && !(await released()); ) await new Promise((resolve) => setTimeout(resolve, 25));
          })
        : null,
    ]);
    const one = (found: { name: string; data: unknown }) => ({ name: found.name, data: found.data });
    return { reply: reply === null ? null : Array.isArray(reply) ? reply.map(one) : one(reply) };
  });

  /** One step that records `<key>:holding` and runs until the test records `<key>:release` (test/runsIndex.test.ts). */
  const heldStep = app.createFunction({ id: "held-step" }, { event: "test/held-step" }, async ({ event, step }) => {
    const key = event.data.key as string;
    return step.run("hold", async () => {
      await effect(`${key}:holding`);
      const released = async () => (await env.DB.prepare("SELECT 1 FROM test_effects WHERE key = ?1").bind(`${key}:release`).first()) !== null;
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && !(await released()); ) await new Promise((resolve) => setTimeout(resolve, 25));
      return "released";
    });
  });

  return [heldStep, waitsGiven, waitsWhileBusy, bulkSleeper, sendsLater, delayedTarget, waitsByMatch, waitsByIf, waitsWithLookback, waitsAny, waitsAll, invokeChild, invokeParent, invokeThenFlaky, invokeUnknown, cancelOnEvent, finishTimeout, startTimeout];
}
