import { afterEach, describe, expect, it, vi } from "vitest";
import { executeRun, type Handler, type RunHost, type RunOutcome, type StepRecord } from "./driver.ts";
import { MAX_STEP_OUTPUT_BYTES } from "./output.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { RetryAfterError } from "./errors/RetryAfterError.ts";
import { StepError } from "./errors/StepError.ts";
import type { EventPayload, StoredEvent } from "./event.ts";
import { hashStepId, MAX_STEPS_PER_RUN } from "./step.ts";
import type { Logger } from "./types.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

const EVENT: StoredEvent = { id: "01TESTEVENT", name: "shop/order.created", data: { orderId: "o-1" }, ts: T0 };

/** An in-memory RunHost: the steps the RunObject would keep in SQLite, a clock the test moves. */
interface TestHost extends RunHost {
  steps: Map<string, StepRecord>;
  /** Every saveStep call, in order. */
  saved: StepRecord[];
  /** Every sendEvents call, in order. */
  sent: EventPayload[][];
  time: number;
  cancelled: boolean;
}

function createHost(): TestHost {
  const host: TestHost = {
    steps: new Map(),
    saved: [],
    sent: [],
    time: T0,
    cancelled: false,
    // Stores the record it is given, as RunStore's cache does.
    saveStep(step) {
      host.saved.push(step);
      host.steps.set(step.id, step);
    },
    async sendEvents(events) {
      host.sent.push(events);
      return { ids: events.map((_, i) => `sent-${host.sent.length}-${i}`) };
    },
    isCancelled: () => host.cancelled,
    now: () => host.time,
  };
  return host;
}

const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TestHandler = Handler<Record<string, any>, unknown>;

interface InvokeOptions {
  handlerAttempt?: number;
  retries?: number;
  stepTimeoutMs?: number;
}

/** One invocation of the handler, as the RunObject makes it. */
function invoke(handler: TestHandler, host: TestHost, options: InvokeOptions = {}): Promise<RunOutcome> {
  return executeRun(
    handler,
    {
      runId: "run-1",
      events: [EVENT],
      handlerAttempt: options.handlerAttempt ?? 0,
      retries: options.retries ?? 4,
      stepTimeoutMs: options.stepTimeoutMs ?? 60_000,
      logger: silentLogger,
    },
    host,
  );
}

/**
 * Runs a handler to its end across invocations the way the RunObject does: after "suspended" the
 * alarm fires at `wakeAt`; after "retry" the handler attempt grows and the alarm fires at `wakeAt`.
 */
async function drive(handler: TestHandler, host: TestHost, options: InvokeOptions = {}) {
  let handlerAttempt = options.handlerAttempt ?? 0;
  const outcomes: RunOutcome[] = [];
  for (let i = 0; i < 50; i++) {
    const outcome = await invoke(handler, host, { ...options, handlerAttempt });
    outcomes.push(outcome);
    if (outcome.type === "suspended") {
      host.time = Math.max(host.time, outcome.wakeAt);
    } else if (outcome.type === "retry") {
      handlerAttempt++;
      host.time = Math.max(host.time, outcome.wakeAt);
    } else {
      return { outcome, outcomes, invocations: outcomes.length };
    }
  }
  throw new Error("the run did not end within 50 invocations");
}

async function recordOf(host: TestHost, name: string): Promise<StepRecord | undefined> {
  return host.steps.get(await hashStepId(name));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("executeRun: context", () => {
  it("gives the handler the event, the events, the run id and attempt 0", async () => {
    const host = createHost();
    const outcome = await invoke(({ event, events, runId, attempt }) => ({ name: event.name, count: events.length, runId, attempt }), host);
    expect(outcome).toEqual({ type: "completed", output: { name: "shop/order.created", count: 1, runId: "run-1", attempt: 0 } });
  });
});

describe("executeRun: memoization", () => {
  it("runs each step body exactly once across replays and returns the stored result", async () => {
    const host = createHost();
    const calls = { a: 0, b: 0 };
    const handler: TestHandler = async ({ step }) => {
      const a = await step.run("a", () => ++calls.a * 10);
      await step.sleep("pause", "1m");
      const b = await step.run("b", () => ++calls.b * 100);
      await step.sleep("pause-again", "1m");
      return { a, b };
    };
    const { outcome, invocations } = await drive(handler, host);
    expect(outcome).toEqual({ type: "completed", output: { a: 10, b: 100 } });
    expect(invocations).toBe(3);
    expect(calls).toEqual({ a: 1, b: 1 });
    expect(await recordOf(host, "a")).toMatchObject({ name: "a", kind: "run", status: "completed", attempts: 1, output: 10 });
  });

  it("runs consecutive steps in one invocation without replaying the handler", async () => {
    const host = createHost();
    let topLevel = 0;
    const handler: TestHandler = async ({ step }) => {
      topLevel++;
      const one = await step.run("one", () => 1);
      const two = await step.run("two", () => one + 1);
      const three = await step.run("three", () => two + 1);
      return [one, two, three];
    };
    const outcome = await invoke(handler, host);
    expect(outcome).toEqual({ type: "completed", output: [1, 2, 3] });
    expect(topLevel).toBe(1);
    expect(host.saved.map((s) => [s.name, s.status])).toEqual([
      ["one", "completed"],
      ["two", "completed"],
      ["three", "completed"],
    ]);
  });

  it("replays code outside steps after a suspension, but not the stored steps", async () => {
    const host = createHost();
    let topLevel = 0;
    let body = 0;
    const handler: TestHandler = async ({ step }) => {
      topLevel++;
      await step.run("work", () => ++body);
      await step.sleep("nap", "5m");
      return "done";
    };
    const { outcome } = await drive(handler, host);
    expect(outcome).toEqual({ type: "completed", output: "done" });
    expect(topLevel).toBe(2);
    expect(body).toBe(1);
  });
});

describe("executeRun: sleep and sleepUntil", () => {
  it("suspends at now + duration and stores a sleeping step", async () => {
    const host = createHost();
    let after = 0;
    const handler: TestHandler = async ({ step }) => {
      await step.sleep("nap", "30m");
      after++;
      return "awake";
    };
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + 30 * MINUTE });
    expect(after).toBe(0);
    expect(await recordOf(host, "nap")).toMatchObject({ name: "nap", kind: "sleep", status: "sleeping", wakeAt: T0 + 30 * MINUTE });
  });

  it("keeps the stored wake time when replayed early, and completes once it has passed", async () => {
    const host = createHost();
    let after = 0;
    const handler: TestHandler = async ({ step }) => {
      await step.sleep("nap", 30 * MINUTE);
      after++;
      return "awake";
    };
    await invoke(handler, host);
    host.time = T0 + 10 * MINUTE;
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + 30 * MINUTE });
    expect(after).toBe(0);
    host.time = T0 + 30 * MINUTE;
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: "awake" });
    expect(after).toBe(1);
    // Its wake time having passed is what makes a sleep done: nothing more is written on waking.
    expect(await recordOf(host, "nap")).toMatchObject({ status: "sleeping", wakeAt: T0 + 30 * MINUTE });
  });

  it.each([
    ["a Date", new Date(T0 + 2 * HOUR)],
    ["an ISO string", new Date(T0 + 2 * HOUR).toISOString()],
    ["epoch ms", T0 + 2 * HOUR],
  ])("sleepUntil with %s suspends until that time and completes on replay", async (_, until) => {
    const host = createHost();
    const handler: TestHandler = async ({ step }) => {
      await step.sleepUntil("until", until);
      return "later";
    };
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + 2 * HOUR });
    host.time = T0 + 2 * HOUR;
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: "later" });
  });

  it("does not suspend for a sleepUntil in the past", async () => {
    const host = createHost();
    const handler: TestHandler = async ({ step }) => {
      await step.sleepUntil("past", new Date(T0 - HOUR));
      return "went on";
    };
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: "went on" });
  });
});

describe("executeRun: parallel steps", () => {
  it("runs parallel steps in the first invocation and memoizes them separately", async () => {
    const host = createHost();
    const calls = { left: 0, right: 0 };
    const handler: TestHandler = async ({ step }) => {
      const [left, right] = await Promise.all([
        step.run("left", () => `L${++calls.left}`),
        step.run("right", () => `R${++calls.right}`),
      ]);
      await step.sleep("nap", "1m");
      return { left, right };
    };
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + MINUTE });
    expect(calls).toEqual({ left: 1, right: 1 });
    expect(await recordOf(host, "left")).toMatchObject({ status: "completed", output: "L1" });
    expect(await recordOf(host, "right")).toMatchObject({ status: "completed", output: "R1" });

    const { outcome } = await drive(handler, host);
    expect(outcome).toEqual({ type: "completed", output: { left: "L1", right: "R1" } });
    expect(calls).toEqual({ left: 1, right: 1 });
  });

  it("suspends parallel sleeps until the earliest, then the next", async () => {
    const host = createHost();
    let after = 0;
    const handler: TestHandler = async ({ step }) => {
      await Promise.all([step.sleep("short", "1h"), step.sleep("long", "2h")]);
      after++;
      return "both done";
    };
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + HOUR });
    expect((await recordOf(host, "short"))?.status).toBe("sleeping");
    expect((await recordOf(host, "long"))?.status).toBe("sleeping");

    host.time = T0 + HOUR;
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + 2 * HOUR });
    expect(await recordOf(host, "short")).toMatchObject({ status: "sleeping", wakeAt: T0 + HOUR });
    expect(after).toBe(0);

    host.time = T0 + 2 * HOUR;
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: "both done" });
    expect(after).toBe(1);
  });

  it("retries a failing parallel step on its own while its sibling stays memoized", async () => {
    const host = createHost();
    const calls = { flaky: 0, steady: 0 };
    const handler: TestHandler = async ({ step }) =>
      Promise.all([
        step.run("flaky", () => {
          if (++calls.flaky === 1) throw new Error("first try fails");
          return "flaky ok";
        }),
        step.run("steady", () => ++calls.steady),
      ]);
    const first = await invoke(handler, host);
    expect(first.type).toBe("suspended");
    expect(calls).toEqual({ flaky: 1, steady: 1 });
    expect((await recordOf(host, "flaky"))?.status).toBe("retrying");

    const { outcome } = await drive(handler, host);
    expect(outcome).toEqual({ type: "completed", output: ["flaky ok", 1] });
    expect(calls).toEqual({ flaky: 2, steady: 1 });
  });
});

describe("executeRun: step ids", () => {
  it('gives repeated ids ":1", ":2" in call order, stored hashed', async () => {
    const host = createHost();
    const handler: TestHandler = async ({ step }) => {
      const results: number[] = [];
      for (let i = 0; i < 3; i++) results.push(await step.run("item", () => i * 10));
      return results;
    };
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: [0, 10, 20] });
    expect(host.saved.map((s) => s.name)).toEqual(["item", "item:1", "item:2"]);
    expect(host.saved.map((s) => s.id)).toEqual(await Promise.all(["item", "item:1", "item:2"].map(hashStepId)));
    expect(host.saved.map((s) => s.output)).toEqual([0, 10, 20]);
  });

  it("gives repeated ids in call order for parallel steps too, and replays each to its own result", async () => {
    const host = createHost();
    const calls: number[] = [];
    const handler: TestHandler = async ({ step }) => {
      const results = await Promise.all([1, 2, 3].map((n) => step.run("fetch", () => (calls.push(n), n * 2))));
      await step.sleep("nap", "1s");
      return results;
    };
    const { outcome } = await drive(handler, host);
    expect(outcome).toEqual({ type: "completed", output: [2, 4, 6] });
    // Ids follow call order; the bodies of parallel steps may start in any order.
    expect([...calls].sort()).toEqual([1, 2, 3]);
    expect(await recordOf(host, "fetch")).toMatchObject({ name: "fetch", output: 2 });
    expect(await recordOf(host, "fetch:1")).toMatchObject({ name: "fetch:1", output: 4 });
    expect(await recordOf(host, "fetch:2")).toMatchObject({ name: "fetch:2", output: 6 });
  });

  it('keeps a step whose own id is "x:1" apart from a repeated "x"', async () => {
    // Every step id is unique in a run (inngest-reference "Steps"); inngest-js skips taken suffixes.
    const host = createHost();
    const calls = { explicit: 0, repeat: 0 };
    const handler: TestHandler = async ({ step }) => {
      const first = await step.run("x", () => "first x");
      const explicit = await step.run("x:1", () => (++calls.explicit, "explicit x:1"));
      const repeat = await step.run("x", () => (++calls.repeat, "second x"));
      return { first, explicit, repeat };
    };
    const outcome = await invoke(handler, host);
    expect(outcome).toEqual({ type: "completed", output: { first: "first x", explicit: "explicit x:1", repeat: "second x" } });
    expect(calls).toEqual({ explicit: 1, repeat: 1 });
    expect(new Set(host.saved.map((s) => s.id)).size).toBe(3);
  });
});

describe("executeRun: step retries", () => {
  it("suspends a failing step until its retry, then runs it again with the attempt incremented", async () => {
    const host = createHost();
    const attemptsSeen: number[] = [];
    let after = 0;
    const handler: TestHandler = async (ctx) => {
      const value = await ctx.step.run("flaky", () => {
        attemptsSeen.push(ctx.attempt);
        if (attemptsSeen.length < 3) throw new Error(`boom ${attemptsSeen.length}`);
        return "ok";
      });
      after++;
      return { value, attemptAfterStep: ctx.attempt };
    };

    const first = await invoke(handler, host);
    expect(first.type).toBe("suspended");
    const firstWake = (first as { wakeAt: number }).wakeAt;
    // First retry after 1 s ±25%.
    expect(firstWake - T0).toBeGreaterThanOrEqual(750);
    expect(firstWake - T0).toBeLessThanOrEqual(1250);
    expect(await recordOf(host, "flaky")).toMatchObject({ status: "retrying", attempts: 1, wakeAt: firstWake, error: { name: "Error", message: "boom 1" } });
    expect(after).toBe(0);

    // An early replay does not run the step again.
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: firstWake });
    expect(attemptsSeen).toEqual([0]);

    host.time = firstWake;
    const second = await invoke(handler, host);
    expect(second.type).toBe("suspended");
    const secondWake = (second as { wakeAt: number }).wakeAt;
    // Second retry after 2 s ±25%.
    expect(secondWake - firstWake).toBeGreaterThanOrEqual(1500);
    expect(secondWake - firstWake).toBeLessThanOrEqual(2500);
    expect(await recordOf(host, "flaky")).toMatchObject({ status: "retrying", attempts: 2, error: { message: "boom 2" } });

    host.time = secondWake;
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: { value: "ok", attemptAfterStep: 0 } });
    expect(attemptsSeen).toEqual([0, 1, 2]);
    expect(after).toBe(1);
    expect(await recordOf(host, "flaky")).toMatchObject({ status: "completed", attempts: 3, output: "ok" });
  });

  it("warns through the logger when a step will be retried", async () => {
    const host = createHost();
    const logger: Logger = { ...silentLogger, warn: vi.fn() };
    await executeRun(
      async ({ step }) => step.run("flaky", () => { throw new Error("nope"); }),
      { runId: "run-1", events: [EVENT], handlerAttempt: 0, retries: 4, stepTimeoutMs: 60_000, logger },
      host,
    );
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(vi.mocked(logger.warn).mock.calls[0]?.[0]).toContain("flaky");
  });

  it("uses a RetryAfterError's duration for the wake time", async () => {
    const host = createHost();
    const handler: TestHandler = async ({ step }) =>
      step.run("limited", () => {
        throw new RetryAfterError("rate limited", "30s");
      });
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + 30 * SECOND });
    expect(await recordOf(host, "limited")).toMatchObject({ status: "retrying", attempts: 1, wakeAt: T0 + 30 * SECOND });
  });

  it("uses a RetryAfterError's date for the wake time", async () => {
    const host = createHost();
    const handler: TestHandler = async ({ step }) =>
      step.run("limited", () => {
        throw new RetryAfterError("come back at noon", new Date(T0 + 12 * HOUR));
      });
    expect(await invoke(handler, host)).toEqual({ type: "suspended", wakeAt: T0 + 12 * HOUR });
  });

  it("fails a step at once on NonRetriableError and throws a StepError into the handler", async () => {
    const host = createHost();
    let calls = 0;
    let caught: unknown;
    const handler: TestHandler = async ({ step }) => {
      try {
        await step.run("charge", () => {
          calls++;
          throw new NonRetriableError("card declined");
        });
      } catch (err) {
        caught = err;
      }
      return "handled";
    };
    expect(await invoke(handler, host, { retries: 4 })).toEqual({ type: "completed", output: "handled" });
    expect(calls).toBe(1);
    expect(caught).toBeInstanceOf(StepError);
    expect((caught as StepError).stepId).toBe("charge");
    expect((caught as StepError).error).toMatchObject({ name: "NonRetriableError", message: "card declined" });
    expect(await recordOf(host, "charge")).toMatchObject({ status: "failed", attempts: 1, error: { name: "NonRetriableError", message: "card declined" } });
  });

  it("throws a StepError into the handler after the last retry; the handler can catch it and go on", async () => {
    const host = createHost();
    let failing = 0;
    let fallback = 0;
    const handler: TestHandler = async ({ step }) => {
      let result: string;
      try {
        result = await step.run("always-fails", () => {
          failing++;
          throw new Error(`failure ${failing}`);
        });
      } catch (err) {
        if (!(err instanceof StepError)) throw err;
        result = await step.run("fallback", () => (++fallback, `fallback after: ${err.error.message}`));
      }
      await step.sleep("nap", "1m");
      return result;
    };
    const { outcome } = await drive(handler, host, { retries: 2 });
    expect(outcome).toEqual({ type: "completed", output: "fallback after: failure 3" });
    // retries: 2 means three attempts in all.
    expect(failing).toBe(3);
    expect(fallback).toBe(1);
    expect(await recordOf(host, "always-fails")).toMatchObject({ status: "failed", attempts: 3, error: { message: "failure 3" } });
  });

  it("fails the run when a StepError is not caught, without retrying the handler", async () => {
    const host = createHost();
    let calls = 0;
    const handler: TestHandler = async ({ step }) => {
      await step.run("doomed", () => {
        calls++;
        throw new Error("bad input");
      });
      return "unreachable";
    };
    const { outcome } = await drive(handler, host, { retries: 1 });
    expect(outcome.type).toBe("failed");
    const error = (outcome as { error: { name: string; message: string } }).error;
    expect(error.name).toBe("StepError");
    expect(error.message).toContain('"doomed"');
    expect(error.message).toContain("bad input");
    expect(calls).toBe(2);
  });
});

describe("executeRun: errors outside steps", () => {
  it('answers "retry" while handlerAttempt < retries, with the handler attempt in ctx.attempt', async () => {
    const host = createHost();
    let attemptSeen = -1;
    const handler: TestHandler = async ({ attempt }) => {
      attemptSeen = attempt;
      throw new Error("outside steps");
    };
    const outcome = await invoke(handler, host, { handlerAttempt: 1, retries: 2 });
    expect(outcome.type).toBe("retry");
    expect(outcome).toMatchObject({ error: { name: "Error", message: "outside steps" } });
    const wakeAt = (outcome as { wakeAt: number }).wakeAt;
    // Second attempt's backoff: 2 s ±25%.
    expect(wakeAt - T0).toBeGreaterThanOrEqual(1500);
    expect(wakeAt - T0).toBeLessThanOrEqual(2500);
    expect(attemptSeen).toBe(1);
  });

  it('answers "failed" once handlerAttempt reaches retries', async () => {
    const host = createHost();
    const handler: TestHandler = async () => {
      throw new Error("still broken");
    };
    expect(await invoke(handler, host, { handlerAttempt: 2, retries: 2 })).toMatchObject({
      type: "failed",
      error: { name: "Error", message: "still broken" },
    });
  });

  it("retries the whole handler without re-running memoized steps", async () => {
    const host = createHost();
    let body = 0;
    let topLevel = 0;
    const handler: TestHandler = async ({ step, attempt }) => {
      topLevel++;
      const value = await step.run("once", () => ++body);
      if (attempt < 2) throw new Error(`flaky handler ${attempt}`);
      return { value, attempt };
    };
    const { outcome, outcomes } = await drive(handler, host, { retries: 4 });
    expect(outcomes.map((o) => o.type)).toEqual(["retry", "retry", "completed"]);
    expect(outcome).toEqual({ type: "completed", output: { value: 1, attempt: 2 } });
    expect(body).toBe(1);
    expect(topLevel).toBe(3);
  });

  it("fails at once on a NonRetriableError thrown outside steps", async () => {
    const host = createHost();
    const handler: TestHandler = async () => {
      throw new NonRetriableError("give up");
    };
    expect(await invoke(handler, host, { handlerAttempt: 0, retries: 4 })).toMatchObject({
      type: "failed",
      error: { name: "NonRetriableError", message: "give up" },
    });
  });

  it("uses a RetryAfterError thrown outside steps for the retry time", async () => {
    const host = createHost();
    const handler: TestHandler = async () => {
      throw new RetryAfterError("later", "1m");
    };
    expect(await invoke(handler, host)).toMatchObject({ type: "retry", wakeAt: T0 + MINUTE, error: { name: "RetryAfterError" } });
  });

  it("serializes a non-Error throw", async () => {
    const host = createHost();
    const handler: TestHandler = async () => {
      throw { code: 42 };
    };
    expect(await invoke(handler, host, { handlerAttempt: 4, retries: 4 })).toEqual({ type: "failed", error: { name: "Error", message: '{"code":42}' } });
  });
});

describe("executeRun: outputs", () => {
  it("turns undefined into null, for steps and for the handler", async () => {
    const host = createHost();
    let seen: unknown = "not set";
    const handler: TestHandler = async ({ step }) => {
      seen = await step.run("nothing", () => undefined);
      return undefined;
    };
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: null });
    expect(seen).toBeNull();
    expect(await recordOf(host, "nothing")).toMatchObject({ status: "completed", output: null });
  });

  it("returns the JSON round-trip of a step's result, on the first run and on replay", async () => {
    const host = createHost();
    const seen: unknown[] = [];
    const handler: TestHandler = async ({ step }) => {
      const value = await step.run("dated", () => ({ at: new Date(T0), skip: undefined, list: [1, undefined] }));
      seen.push(value);
      await step.sleep("nap", "1s");
      return value;
    };
    const { outcome } = await drive(handler, host);
    const expected = { at: "2026-01-01T00:00:00.000Z", list: [1, null] };
    expect(seen).toEqual([expected, expected]);
    expect(typeof (seen[0] as { at: unknown }).at).toBe("string");
    expect(outcome).toEqual({ type: "completed", output: expected });
  });

  it("returns the JSON round-trip of the handler's output", async () => {
    const host = createHost();
    expect(await invoke(async () => ({ at: new Date(T0) }), host)).toEqual({ type: "completed", output: { at: "2026-01-01T00:00:00.000Z" } });
  });

  it("fails a step with non-serializable (circular) output for good, saying so", async () => {
    const host = createHost();
    let calls = 0;
    const handler: TestHandler = async ({ step }) =>
      step.run("circular", () => {
        calls++;
        const node: { self?: unknown } = {};
        node.self = node;
        return node;
      });
    const outcome = await invoke(handler, host, { retries: 4 });
    expect(outcome.type).toBe("failed");
    expect(calls).toBe(1);
    const record = await recordOf(host, "circular");
    expect(record).toMatchObject({ status: "failed", attempts: 1, error: { name: "NonRetriableError" } });
    expect(record?.error?.message).toContain('step "circular" output is not JSON-serializable');
  });

  it("fails the run when the handler's output is not serializable", async () => {
    const host = createHost();
    const outcome = await invoke(async () => ({ big: 10n }), host);
    expect(outcome.type).toBe("failed");
    expect((outcome as { error: { message: string } }).error.message).toContain("handler output is not JSON-serializable");
  });

  it("accepts a step output of exactly 4 MiB and fails one above it with a message naming the limit", async () => {
    const host = createHost();
    let caught: StepError | undefined;
    const handler: TestHandler = async ({ step }) => {
      // A JSON string is its characters plus two quotes.
      const atLimit = await step.run("at-limit", () => "a".repeat(MAX_STEP_OUTPUT_BYTES - 2));
      try {
        await step.run("too-big", () => "b".repeat(MAX_STEP_OUTPUT_BYTES));
      } catch (err) {
        caught = err as StepError;
      }
      return atLimit.length;
    };
    expect(await invoke(handler, host)).toEqual({ type: "completed", output: MAX_STEP_OUTPUT_BYTES - 2 });
    expect(caught).toBeInstanceOf(StepError);
    expect(caught?.error.name).toBe("NonRetriableError");
    expect(caught?.error.message).toContain('step "too-big" output is 4.0 MiB; the limit is 4 MiB');
    expect(await recordOf(host, "too-big")).toMatchObject({ status: "failed", attempts: 1 });
  });

  it("fails the step that would take the run's state past 32 MiB", async () => {
    const host = createHost();
    const handler: TestHandler = async ({ step }) => {
      for (let i = 0; i < 8; i++) await step.run("chunk", () => "c".repeat(MAX_STEP_OUTPUT_BYTES - 2));
      await step.run("one-more", () => "d");
      return "unreachable";
    };
    const outcome = await invoke(handler, host);
    expect(outcome.type).toBe("failed");
    const record = await recordOf(host, "one-more");
    expect(record).toMatchObject({ status: "failed", error: { name: "NonRetriableError" } });
    expect(record?.error?.message).toContain("the limit is 32 MiB per run");
  });

  it("does not let the handler's changes to a step result leak into the stored result", async () => {
    // The RunObject keeps saved records in memory between invocations, as this host does.
    const host = createHost();
    const handler: TestHandler = async ({ step }) => {
      const cart = await step.run("load-cart", () => ({ items: ["apple"] }));
      cart.items.push("pear");
      await step.sleep("nap", "1m");
      return cart;
    };
    const { outcome } = await drive(handler, host);
    expect(outcome).toEqual({ type: "completed", output: { items: ["apple", "pear"] } });
    expect(await recordOf(host, "load-cart")).toMatchObject({ output: { items: ["apple"] } });
  });
});

describe("executeRun: limits", () => {
  it(`runs ${MAX_STEPS_PER_RUN} steps and fails the run at the next one with a message naming the limit`, async () => {
    const host = createHost();
    let ran = 0;
    let extraRan = 0;
    const handler: TestHandler = async ({ step }) => {
      await Promise.all(Array.from({ length: MAX_STEPS_PER_RUN }, (_, i) => step.run("s", () => (ran++, i))));
      await step.run("one-too-many", () => ++extraRan);
      return "unreachable";
    };
    const outcome = await invoke(handler, host, { retries: 4 });
    expect(outcome.type).toBe("failed");
    expect(outcome).toMatchObject({ error: { name: "NonRetriableError" } });
    expect((outcome as { error: { message: string } }).error.message).toContain("the limit is 1000 steps per run");
    expect((outcome as { error: { message: string } }).error.message).toContain('"one-too-many"');
    expect(ran).toBe(MAX_STEPS_PER_RUN);
    expect(extraRan).toBe(0);
    expect(host.steps.size).toBe(MAX_STEPS_PER_RUN);
  });
});

describe("executeRun: cancellation", () => {
  it('answers "cancelled" and runs no new step body once the run is cancelled; stored steps still replay', async () => {
    const host = createHost();
    const calls = { first: 0, second: 0 };
    let firstValue: unknown;
    const handler: TestHandler = async ({ step }) => {
      firstValue = await step.run("first", () => ++calls.first);
      await step.sleep("nap", "1h");
      await step.run("second", () => ++calls.second);
      return "finished";
    };
    expect((await invoke(handler, host)).type).toBe("suspended");
    host.cancelled = true;
    host.time = T0 + HOUR;
    expect(await invoke(handler, host)).toEqual({ type: "cancelled" });
    expect(calls).toEqual({ first: 1, second: 0 });
    expect(firstValue).toBe(1);
    expect(await recordOf(host, "second")).toBeUndefined();
  });

  it("discards the result of a step that was running when the run was cancelled", async () => {
    const host = createHost();
    let next = 0;
    const handler: TestHandler = async ({ step }) => {
      await step.run("in-flight", () => {
        host.cancelled = true;
        return "late result";
      });
      await step.run("next", () => ++next);
      return "finished";
    };
    expect(await invoke(handler, host)).toEqual({ type: "cancelled" });
    expect(host.saved).toEqual([]);
    expect(next).toBe(0);
  });

  it("does not send events once the run is cancelled", async () => {
    const host = createHost();
    host.cancelled = true;
    const handler: TestHandler = async ({ step }) => step.sendEvent("notify", { name: "shop/order.paid", data: {} });
    expect(await invoke(handler, host)).toEqual({ type: "cancelled" });
    expect(host.sent).toEqual([]);
  });

  it("does not start a new sleep once the run is cancelled", async () => {
    // RunHost.isCancelled: "no new step starts".
    const host = createHost();
    host.cancelled = true;
    const handler: TestHandler = async ({ step }) => {
      await step.sleep("nap", "1h");
      return "finished";
    };
    expect(await invoke(handler, host)).toEqual({ type: "cancelled" });
    expect(host.saved).toEqual([]);
  });
});

describe("executeRun: sendEvent", () => {
  it("sends once across replays and returns the same ids every time", async () => {
    const host = createHost();
    const idsSeen: string[][] = [];
    const handler: TestHandler = async ({ step }) => {
      const { ids } = await step.sendEvent("notify", { name: "shop/order.paid", data: { orderId: "o-1" } });
      idsSeen.push(ids);
      await step.sleep("nap", "1m");
      return ids;
    };
    const { outcome, invocations } = await drive(handler, host);
    expect(invocations).toBe(2);
    expect(host.sent).toEqual([[{ name: "shop/order.paid", data: { orderId: "o-1" } }]]);
    expect(idsSeen).toEqual([["sent-1-0"], ["sent-1-0"]]);
    expect(outcome).toEqual({ type: "completed", output: ["sent-1-0"] });
    expect(await recordOf(host, "notify")).toMatchObject({ kind: "sendEvent", status: "completed", output: { ids: ["sent-1-0"] } });
  });

  it("passes an array of events through as one send", async () => {
    const host = createHost();
    const events = [
      { name: "a/one", data: { n: 1 } },
      { name: "a/two", data: { n: 2 } },
    ];
    const outcome = await invoke(async ({ step }) => step.sendEvent("fan-out", events), host);
    expect(outcome).toEqual({ type: "completed", output: { ids: ["sent-1-0", "sent-1-1"] } });
    expect(host.sent).toEqual([events]);
  });
});

describe("step timeout", () => {
  it("fails a step body that never settles, retriably, naming the stepTimeout", async () => {
    const host = createHost();
    const outcome = await invoke(async ({ step }) => step.run("hangs", () => new Promise(() => {})), host, { stepTimeoutMs: 20 });
    expect(outcome.type).toBe("suspended");
    const [stored] = [...host.steps.values()];
    expect(stored).toMatchObject({ name: "hangs", status: "retrying", attempts: 1, error: { name: "StepTimeoutError" } });
    expect(stored?.error?.message).toContain("stepTimeout");
  });

  it("throws a StepError once a hanging step has used its retries", async () => {
    const host = createHost();
    const outcome = await invoke(async ({ step }) => step.run("hangs", () => new Promise(() => {})), host, { stepTimeoutMs: 20, retries: 0 });
    expect(outcome).toMatchObject({ type: "failed", error: { name: "StepError" } });
    expect((outcome as { error: { message: string } }).error.message).toContain("StepTimeoutError");
  });

  it("fails a handler whose own code hangs between steps, as an error outside steps", async () => {
    const host = createHost();
    const outcome = await invoke(
      async ({ step }) => {
        await step.run("first", () => 1);
        await new Promise(() => {});
      },
      host,
      { stepTimeoutMs: 20, retries: 1 },
    );
    expect(outcome).toMatchObject({ type: "retry", error: { name: "StepTimeoutError" } });
    expect([...host.steps.values()].map((s) => s.status)).toEqual(["completed"]);
  });
});

describe("after an invocation ends", () => {
  it("starts no step from handler code that was still running when the run suspended", async () => {
    const host = createHost();
    let lateRuns = 0;
    const outcome = await invoke(
      async ({ step }) => {
        await Promise.all([
          step.sleep("nap", "1h"),
          (async () => {
            await new Promise((resolve) => setTimeout(resolve, 30));
            await step.run("late", () => ++lateRuns);
          })(),
        ]);
      },
      host,
    );
    expect(outcome.type).toBe("suspended");
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(lateRuns).toBe(0);
    expect([...host.steps.values()].map((s) => s.name)).toEqual(["nap"]);
  });

  it("fails at once, without retries, on a sleep duration it cannot read", async () => {
    const host = createHost();
    const outcome = await invoke(async ({ step }) => step.sleep("nap", "soon-ish"), host, { retries: 4 });
    expect(outcome).toMatchObject({ type: "failed", error: { name: "NonRetriableError" } });
    expect((outcome as { error: { message: string } }).error.message).toContain("invalid duration");
  });
});
