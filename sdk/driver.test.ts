import { describe, expect, it, vi } from "vitest";
import { executeRun, type Handler, type RunHost, type StepRecord } from "./driver.ts";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { RetryAfterError } from "./errors/RetryAfterError.ts";
import { StepError } from "./errors/StepError.ts";
import type { EventPayload, StoredEvent } from "./event.ts";
import { MAX_STEP_OUTPUT_BYTES } from "./output.ts";
import { backoffDelay } from "./retry.ts";
import { hashStepId, MAX_STEPS_PER_RUN, sendEventId } from "./step.ts";
import { drive, FakeClock, TestRun, type TestRunOptions } from "./testing.ts";
import type { Logger } from "./types.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** The test clock's jitter source is a constant 0.5: backoffs are exact. */
const backoff = (failures: number) => backoffDelay(failures, () => 0.5);

const EVENT: StoredEvent = { id: "01TESTEVENT", name: "shop/order.created", data: { orderId: "o-1" }, ts: T0 };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TestHandler = Handler<Record<string, any>, unknown>;

/** A run as the RunObject keeps it, in memory, with a clock at T0 that moves only when told. */
function createRun(handler: TestHandler, options: TestRunOptions = {}) {
  return new TestRun(handler, { runId: "run-1", events: [EVENT], retries: 4, stepTimeoutMs: HOUR, clock: new FakeClock(T0), ...options });
}

/** A promise that settles after `ms` of the clock's (fake) time. */
function after(clock: FakeClock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(resolve, ms));
}

/** `n` real turns of the event loop, no time. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

function memoryLogger() {
  const lines: string[] = [];
  const write = (message: string) => void lines.push(message);
  const logger: Logger = { debug: write, info: write, warn: () => {}, error: write };
  return { logger, lines };
}

describe("executeRun: context", () => {
  it("gives the handler the event, the events, the run id and attempt 0", async () => {
    const run = createRun(({ event, events, runId, attempt }) => ({ name: event.name, count: events.length, runId, attempt }));
    expect(await run.invoke()).toEqual({ type: "completed", output: { name: "shop/order.created", count: 1, runId: "run-1", attempt: 0 } });
  });
});

describe("executeRun: memoization", () => {
  it("runs each step body exactly once across replays and returns the stored result", async () => {
    const calls = { a: 0, b: 0 };
    const run = createRun(async ({ step }) => {
      const a = await step.run("a", () => ++calls.a * 10);
      await step.sleep("pause", "1m");
      const b = await step.run("b", () => ++calls.b * 100);
      await step.sleep("pause-again", "1m");
      return { a, b };
    });
    expect(await run.drive()).toEqual({ type: "completed", output: { a: 10, b: 100 } });
    expect(run.outcomes).toHaveLength(3);
    expect(calls).toEqual({ a: 1, b: 1 });
    expect(run.step("a")).toMatchObject({ name: "a", kind: "run", status: "completed", attempts: 1, output: 10, seq: 1 });
    expect(run.step("b")).toMatchObject({ status: "completed", seq: 2 });
  });

  it("runs consecutive steps in one invocation without replaying the handler", async () => {
    let topLevel = 0;
    const run = createRun(async ({ step }) => {
      topLevel++;
      const one = await step.run("one", () => 1);
      const two = await step.run("two", () => one + 1);
      const three = await step.run("three", () => two + 1);
      return [one, two, three];
    });
    expect(await run.invoke()).toEqual({ type: "completed", output: [1, 2, 3] });
    expect(topLevel).toBe(1);
    expect(run.saved.map((s) => [s.name, s.status, s.seq])).toEqual([
      ["one", "completed", 1],
      ["two", "completed", 2],
      ["three", "completed", 3],
    ]);
  });

  it("replays code outside steps after a suspension, but not the stored steps", async () => {
    let topLevel = 0;
    let body = 0;
    const { outcome, run } = await drive(async ({ step }) => {
      topLevel++;
      await step.run("work", () => ++body);
      await step.sleep("nap", "5m");
      return "done";
    });
    expect(outcome).toEqual({ type: "completed", output: "done" });
    expect(run.outcomes).toEqual([{ type: "suspended", wakeAt: run.starts[0]!.at + 5 * MINUTE }, outcome]);
    expect(topLevel).toBe(2);
    expect(body).toBe(1);
  });
});

describe("executeRun: sleep and sleepUntil", () => {
  it("suspends at now + duration and stores a sleeping step", async () => {
    let after = 0;
    const run = createRun(async ({ step }) => {
      await step.sleep("nap", "30m");
      after++;
      return "awake";
    });
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 30 * MINUTE });
    expect(after).toBe(0);
    expect(run.step("nap")).toMatchObject({ name: "nap", kind: "sleep", status: "sleeping", wakeAt: T0 + 30 * MINUTE });
  });

  it("keeps the stored wake time when replayed early, and completes once it has passed", async () => {
    let after = 0;
    const run = createRun(async ({ step }) => {
      await step.sleep("nap", 30 * MINUTE);
      after++;
      return "awake";
    });
    await run.invoke();
    run.clock.advanceTo(T0 + 10 * MINUTE);
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 30 * MINUTE });
    expect(after).toBe(0);
    run.clock.advanceTo(T0 + 30 * MINUTE);
    expect(await run.invoke()).toEqual({ type: "completed", output: "awake" });
    expect(after).toBe(1);
    // Its wake time having passed is what makes a sleep done: nothing more is written on waking.
    expect(run.step("nap")).toMatchObject({ status: "sleeping", wakeAt: T0 + 30 * MINUTE });
    expect(run.saved).toHaveLength(1);
  });

  it("replays sleeps that woke in different invocations in the order they woke, whatever their ids", async () => {
    // Found by the model test: both sleeps settle after the same stored result (none), and the
    // second one's hashed id sorts first.
    expect(hashStepId("second") < hashStepId("first")).toBe(true);
    const run = createRun(async ({ step }) => {
      await step.sleep("first", "1s");
      await step.sleep("second", "1s");
      return "both slept";
    });
    expect(await run.drive()).toEqual({ type: "completed", output: "both slept" });
    expect(run.outcomes.map((o) => o.type)).toEqual(["suspended", "suspended", "completed"]);
  });

  it.each([
    ["a Date", new Date(T0 + 2 * HOUR)],
    ["an ISO string", new Date(T0 + 2 * HOUR).toISOString()],
    ["epoch ms", T0 + 2 * HOUR],
  ])("sleepUntil with %s suspends until that time and completes on replay", async (_, until) => {
    const run = createRun(async ({ step }) => {
      await step.sleepUntil("until", until);
      return "later";
    });
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 2 * HOUR });
    run.clock.advanceTo(T0 + 2 * HOUR);
    expect(await run.invoke()).toEqual({ type: "completed", output: "later" });
  });

  it("does not suspend for a sleepUntil in the past, and stores it completed", async () => {
    const run = createRun(async ({ step }) => {
      await step.sleepUntil("past", new Date(T0 - HOUR));
      return "went on";
    });
    expect(await run.invoke()).toEqual({ type: "completed", output: "went on" });
    expect(run.step("past")).toMatchObject({ status: "completed", seq: 1 });
  });
});

describe("executeRun: parallel steps", () => {
  it("runs parallel steps in the first invocation and memoizes them separately", async () => {
    const calls = { left: 0, right: 0 };
    const run = createRun(async ({ step }) => {
      const [left, right] = await Promise.all([step.run("left", () => `L${++calls.left}`), step.run("right", () => `R${++calls.right}`)]);
      await step.sleep("nap", "1m");
      return { left, right };
    });
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + MINUTE });
    expect(calls).toEqual({ left: 1, right: 1 });
    expect(run.step("left")).toMatchObject({ status: "completed", output: "L1" });
    expect(run.step("right")).toMatchObject({ status: "completed", output: "R1" });

    run.clock.advanceTo(T0 + MINUTE);
    expect(await run.drive()).toEqual({ type: "completed", output: { left: "L1", right: "R1" } });
    expect(calls).toEqual({ left: 1, right: 1 });
  });

  it("suspends parallel sleeps until the earliest, then the next", async () => {
    let after = 0;
    const run = createRun(async ({ step }) => {
      await Promise.all([step.sleep("short", "1h"), step.sleep("long", "2h")]);
      after++;
      return "both done";
    });
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + HOUR });
    expect(run.step("short")?.status).toBe("sleeping");
    expect(run.step("long")?.status).toBe("sleeping");

    run.clock.advanceTo(T0 + HOUR);
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 2 * HOUR });
    expect(after).toBe(0);

    run.clock.advanceTo(T0 + 2 * HOUR);
    expect(await run.invoke()).toEqual({ type: "completed", output: "both done" });
    expect(after).toBe(1);
  });

  it("retries a failing parallel step on its own while its sibling stays memoized", async () => {
    const calls = { flaky: 0, steady: 0 };
    const run = createRun(async ({ step }) =>
      Promise.all([
        step.run("flaky", () => {
          if (++calls.flaky === 1) throw new Error("first try fails");
          return "flaky ok";
        }),
        step.run("steady", () => ++calls.steady),
      ]),
    );
    expect((await run.invoke()).type).toBe("suspended");
    expect(calls).toEqual({ flaky: 1, steady: 1 });
    expect(run.step("flaky")?.status).toBe("retrying");

    expect(await run.drive()).toEqual({ type: "completed", output: ["flaky ok", 1] });
    expect(calls).toEqual({ flaky: 2, steady: 1 });
  });
});

describe("executeRun: replays settle steps in the order they first settled", () => {
  /** Records what each invocation's Promise.race / Promise.any saw, and returns `work+<winner>`. */
  function racingHandler(combine: "race" | "any", seen: string[]): (clock: FakeClock) => TestHandler {
    return (clock) =>
      async ({ step }) => {
        const racers = [step.run("slow", () => after(clock, 300).then(() => "slow")), step.run("fast", () => "fast")];
        const winner = await (combine === "race" ? Promise.race(racers) : Promise.any(racers));
        seen.push(winner);
        await step.sleep("nap", "1m");
        const work = await step.run("work", () => "work");
        return `${work}+${winner}`;
      };
  }

  it.each(["race", "any"] as const)("gives Promise.%s the same winner on the first pass and on every replay", async (combine) => {
    const seen: string[] = [];
    const clock = new FakeClock(T0);
    const run = createRun(racingHandler(combine, seen)(clock), { clock });
    expect(await run.drive()).toEqual({ type: "completed", output: "work+fast" });
    expect(seen).toEqual(["fast", "fast"]);
    // The slow step was still stored (the invocation waited for it), after the fast one.
    expect([run.step("fast")?.seq, run.step("slow")?.seq]).toEqual([1, 2]);
  });

  it("gives repeated ids in parallel branches the same result on replay as on the first pass", async () => {
    const clock = new FakeClock(T0);
    const seen: unknown[] = [];
    const branch = async (step: Parameters<TestHandler>[0]["step"], label: string, xMs: number, yMs: number) => {
      const x = await step.run("x", () => after(clock, xMs).then(() => `x-${label}`));
      return step.run("y", () => after(clock, yMs).then(() => `y-${label}-after-${x}`));
    };
    const run = createRun(
      async ({ step }) => {
        const results = await Promise.all([branch(step, "A", 300, 10), branch(step, "B", 10, 300)]);
        seen.push(results);
        await step.sleep("nap", "1m");
        return results;
      },
      { clock },
    );
    const expected = ["y-A-after-x-A", "y-B-after-x-B"];
    expect(await run.drive()).toEqual({ type: "completed", output: expected });
    expect(seen).toEqual([expected, expected]);
    // B reached "y" first, so the names went by call order: A has "x" and "y:1", B "x:1" and "y".
    expect(run.step("y")).toMatchObject({ output: "y-B-after-x-B" });
    expect(run.step("y:1")).toMatchObject({ output: "y-A-after-x-A" });
  });

  it("holds a new result until the replay is done, also while code outside steps awaits something", async () => {
    // Found by the model test. "b" fails slowly on the first pass, so "c" wins; on the retry "b"
    // is done before the handler, awaiting I/O between "a" and "c", asks for the stored "c".
    const winners: string[] = [];
    const run = createRun(async (ctx) => {
      const { step } = ctx;
      const viaIo = (async () => {
        await step.run("a", () => "a");
        await turns(5);
        return step.run("c", () => "c");
      })();
      const b = step.run("b", async () => {
        if (ctx.attempt > 0) return "b";
        await turns(20);
        throw new Error("b flaked");
      });
      const winner = await Promise.race([viaIo, b]);
      winners.push(winner);
      const recorded = await step.run("record-winner", () => winner);
      await b;
      return { recorded, winner };
    });
    expect(await run.drive()).toEqual({ type: "completed", output: { recorded: "c", winner: "c" } });
    expect(winners).toEqual(["c", "c"]);
  });
});

describe("executeRun: a host whose saves take time", () => {
  it("gives the handler new results in seq order, however long each one's save takes", async () => {
    // Found by the model test: "first" finishes first (seq 1) but its save is the slow one.
    const winners: string[] = [];
    const run = createRun(
      async ({ step }) => {
        const winner = await Promise.race([step.run("first", () => "first"), step.run("second", () => turns(1).then(() => "second"))]);
        winners.push(winner);
        await step.sleep("nap", "1m");
        return winner;
      },
      { saveTurns: (record) => (record.name === "first" ? 5 : 0) },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: "first" });
    expect(winners).toEqual(["first", "first"]);
    expect([run.step("first")?.seq, run.step("second")?.seq]).toEqual([1, 2]);
  });

  it("does not end an invocation while a save is in flight", async () => {
    const run = createRun(async ({ step }) => step.run("only", () => 1), { saveTurns: () => 10 });
    expect(await run.invoke()).toEqual({ type: "completed", output: 1 });
    expect(run.step("only")).toMatchObject({ status: "completed" });
  });
});

describe("executeRun: step ids", () => {
  it('gives repeated ids ":1", ":2" in call order, stored hashed', async () => {
    const run = createRun(async ({ step }) => {
      const results: number[] = [];
      for (let i = 0; i < 3; i++) results.push(await step.run("item", () => i * 10));
      return results;
    });
    expect(await run.invoke()).toEqual({ type: "completed", output: [0, 10, 20] });
    expect(run.saved.map((s) => s.name)).toEqual(["item", "item:1", "item:2"]);
    expect(run.saved.map((s) => s.id)).toEqual(["item", "item:1", "item:2"].map(hashStepId));
    expect(run.saved.map((s) => s.output)).toEqual([0, 10, 20]);
  });

  it("gives repeated ids in call order for parallel steps too, and replays each to its own result", async () => {
    const calls: number[] = [];
    const run = createRun(async ({ step }) => {
      const results = await Promise.all([1, 2, 3].map((n) => step.run("fetch", () => (calls.push(n), n * 2))));
      await step.sleep("nap", "1s");
      return results;
    });
    expect(await run.drive()).toEqual({ type: "completed", output: [2, 4, 6] });
    expect([...calls].sort()).toEqual([1, 2, 3]);
    expect(run.step("fetch")).toMatchObject({ name: "fetch", output: 2 });
    expect(run.step("fetch:1")).toMatchObject({ name: "fetch:1", output: 4 });
    expect(run.step("fetch:2")).toMatchObject({ name: "fetch:2", output: 6 });
  });

  it('keeps a step whose own id is "x:1" apart from a repeated "x"', async () => {
    const calls = { explicit: 0, repeat: 0 };
    const run = createRun(async ({ step }) => {
      const first = await step.run("x", () => "first x");
      const explicit = await step.run("x:1", () => (++calls.explicit, "explicit x:1"));
      const repeat = await step.run("x", () => (++calls.repeat, "second x"));
      return { first, explicit, repeat };
    });
    expect(await run.invoke()).toEqual({ type: "completed", output: { first: "first x", explicit: "explicit x:1", repeat: "second x" } });
    expect(calls).toEqual({ explicit: 1, repeat: 1 });
    expect(new Set(run.saved.map((s) => s.id)).size).toBe(3);
  });
});

describe("executeRun: step retries", () => {
  it("suspends a failing step until its retry (Inngest's schedule), then runs it again with the attempt incremented", async () => {
    const attemptsSeen: number[] = [];
    let after = 0;
    const run = createRun(async (ctx) => {
      const value = await ctx.step.run("flaky", () => {
        attemptsSeen.push(ctx.attempt);
        if (attemptsSeen.length < 3) throw new Error(`boom ${attemptsSeen.length}`);
        return "ok";
      });
      after++;
      return { value, attemptAfterStep: ctx.attempt };
    });

    const firstWake = T0 + backoff(1);
    expect(backoff(1)).toBe(15 * SECOND + 15 * SECOND);
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: firstWake });
    expect(run.step("flaky")).toMatchObject({ status: "retrying", attempts: 1, wakeAt: firstWake, error: { name: "Error", message: "boom 1" } });
    expect(after).toBe(0);

    // An early replay does not run the step again.
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: firstWake });
    expect(attemptsSeen).toEqual([0]);

    run.clock.advanceTo(firstWake);
    const secondWake = firstWake + backoff(2);
    expect(backoff(2)).toBe(30 * SECOND + 15 * SECOND);
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: secondWake });
    expect(run.step("flaky")).toMatchObject({ status: "retrying", attempts: 2, error: { message: "boom 2" } });

    run.clock.advanceTo(secondWake);
    expect(await run.invoke()).toEqual({ type: "completed", output: { value: "ok", attemptAfterStep: 0 } });
    expect(attemptsSeen).toEqual([0, 1, 2]);
    expect(after).toBe(1);
    expect(run.step("flaky")).toMatchObject({ status: "completed", attempts: 3, output: "ok" });
  });

  it("adds up to 30 s of jitter from the clock's randomness", async () => {
    const handler: TestHandler = async ({ step }) =>
      step.run("flaky", () => {
        throw new Error("nope");
      });
    const low = createRun(handler, { clock: new FakeClock(T0, () => 0) });
    const high = createRun(handler, { clock: new FakeClock(T0, () => 0.999_999) });
    expect(await low.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 15 * SECOND });
    expect(await high.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 15 * SECOND + 29_999 });
  });

  it("warns through the logger when a step will be retried", async () => {
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: vi.fn() };
    const run = createRun(
      async ({ step }) =>
        step.run("flaky", () => {
          throw new Error("nope");
        }),
      { logger },
    );
    await run.invoke();
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(vi.mocked(logger.warn).mock.calls[0]?.[0]).toContain("flaky");
  });

  it("uses a RetryAfterError's duration for the wake time", async () => {
    const run = createRun(async ({ step }) =>
      step.run("limited", () => {
        throw new RetryAfterError("rate limited", "30s");
      }),
    );
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 30 * SECOND });
    expect(run.step("limited")).toMatchObject({ status: "retrying", attempts: 1, wakeAt: T0 + 30 * SECOND });
  });

  it("uses a RetryAfterError's date for the wake time", async () => {
    const run = createRun(async ({ step }) =>
      step.run("limited", () => {
        throw new RetryAfterError("come back at noon", new Date(T0 + 12 * HOUR));
      }),
    );
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 12 * HOUR });
  });

  it("fails a step at once on NonRetriableError and throws a StepError into the handler", async () => {
    let calls = 0;
    let caught: unknown;
    const run = createRun(async ({ step }) => {
      try {
        await step.run("charge", () => {
          calls++;
          throw new NonRetriableError("card declined");
        });
      } catch (err) {
        caught = err;
      }
      return "handled";
    });
    expect(await run.invoke()).toEqual({ type: "completed", output: "handled" });
    expect(calls).toBe(1);
    expect(caught).toBeInstanceOf(StepError);
    expect((caught as StepError).stepId).toBe("charge");
    expect((caught as StepError).error).toMatchObject({ name: "NonRetriableError", message: "card declined" });
    expect(run.step("charge")).toMatchObject({ status: "failed", attempts: 1, seq: 1, error: { name: "NonRetriableError", message: "card declined" } });
  });

  it("throws a StepError into the handler after the last retry; the handler can catch it and go on", async () => {
    let failing = 0;
    let fallback = 0;
    const run = createRun(
      async ({ step }) => {
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
      },
      { retries: 2 },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: "fallback after: failure 3" });
    // retries: 2 means three attempts in all.
    expect(failing).toBe(3);
    expect(fallback).toBe(1);
    expect(run.step("always-fails")).toMatchObject({ status: "failed", attempts: 3, error: { message: "failure 3" } });
  });

  it("fails the run when a StepError is not caught, without retrying the handler", async () => {
    let calls = 0;
    const run = createRun(
      async ({ step }) => {
        await step.run("doomed", () => {
          calls++;
          throw new Error("bad input");
        });
        return "unreachable";
      },
      { retries: 1 },
    );
    const outcome = await run.drive();
    expect(outcome.type).toBe("failed");
    // As Inngest's: the step's error's message; the stored error names the step in its own field.
    expect((outcome as { error: unknown }).error).toMatchObject({ name: "StepError", message: "bad input", stepId: "doomed" });
    expect(calls).toBe(2);
  });

  it("shows each step body its own attempt, also when parallel bodies on different attempts interleave", async () => {
    const clock = new FakeClock(T0);
    const seen: string[] = [];
    const body = (name: string, failures: number, retryAfter: string, read: () => number) => async () => {
      const attempt = read();
      await after(clock, name === "p" ? 20 : 10);
      // Read again after the other body ran in between.
      seen.push(`${name}:${attempt}/${read()}`);
      if (attempt < failures) throw new RetryAfterError(`${name} not yet`, retryAfter);
      return name;
    };
    const run = createRun(
      async (ctx) => Promise.all([ctx.step.run("p", body("p", 1, "2m", () => ctx.attempt)), ctx.step.run("q", body("q", 2, "1m", () => ctx.attempt))]),
      { clock },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: ["p", "q"] });
    // At T0 + 2m, p runs its 2nd attempt while q runs its 3rd.
    expect(seen).toEqual(["q:0/0", "p:0/0", "q:1/1", "q:2/2", "p:1/1"]);
  });
});

describe("executeRun: errors outside steps", () => {
  it('answers "retry" while the failures of this code are within retries, with its attempt in ctx.attempt', async () => {
    let attemptSeen = -1;
    const run = createRun(
      async ({ attempt }) => {
        attemptSeen = attempt;
        throw new Error("outside steps");
      },
      { retries: 2 },
    );
    run.handlerFailures = { count: 1, unitSeq: 0 };
    const outcome = await run.invoke();
    expect(outcome).toEqual({
      type: "retry",
      error: expect.objectContaining({ name: "Error", message: "outside steps" }),
      wakeAt: T0 + backoff(2),
      handlerFailures: { count: 2, unitSeq: 0 },
    });
    expect(attemptSeen).toBe(1);
  });

  it('answers "failed" once the failures of this code pass retries', async () => {
    const run = createRun(
      async () => {
        throw new Error("still broken");
      },
      { retries: 2 },
    );
    run.handlerFailures = { count: 2, unitSeq: 0 };
    expect(await run.invoke()).toMatchObject({ type: "failed", error: { name: "Error", message: "still broken" } });
  });

  it("retries the whole handler without re-running memoized steps", async () => {
    let body = 0;
    let topLevel = 0;
    const run = createRun(async ({ step, attempt }) => {
      topLevel++;
      const value = await step.run("once", () => ++body);
      if (attempt < 2) throw new Error(`flaky handler ${attempt}`);
      return { value, attempt };
    });
    expect(await run.drive()).toEqual({ type: "completed", output: { value: 1, attempt: 2 } });
    expect(run.outcomes.map((o) => o.type)).toEqual(["retry", "retry", "completed"]);
    expect(body).toBe(1);
    expect(topLevel).toBe(3);
  });

  it("counts failures outside steps per unit of code: a flaky call after each of three steps does not use up retries: 1", async () => {
    const calls: Record<string, number> = {};
    const attempts: Record<string, number[]> = {};
    const flaky = (point: string, attempt: number) => {
      calls[point] = (calls[point] ?? 0) + 1;
      // The attempt the code sees each time the call is really made (replays of a passed unit call it again).
      if (calls[point] <= 2) (attempts[point] ??= []).push(attempt);
      if (calls[point] === 1) throw new Error(`${point} flaked`);
    };
    const run = createRun(
      async (ctx) => {
        for (const name of ["a", "b", "c"]) {
          await ctx.step.run(name, () => name);
          flaky(name, ctx.attempt);
        }
        return "done";
      },
      { retries: 1 },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: "done" });
    expect(run.outcomes.map((o) => o.type)).toEqual(["retry", "retry", "retry", "completed"]);
    expect(attempts).toEqual({ a: [0, 1], b: [0, 1], c: [0, 1] });
  });

  it("fails at once on a NonRetriableError thrown outside steps", async () => {
    const run = createRun(async () => {
      throw new NonRetriableError("give up");
    });
    expect(await run.invoke()).toMatchObject({ type: "failed", error: { name: "NonRetriableError", message: "give up" } });
  });

  it.each([
    ["1m", MINUTE],
    ["1h", HOUR],
  ])("uses a RetryAfterError(%s) thrown outside steps for the retry time", async (duration, ms) => {
    const run = createRun(async ({ step }) => {
      await step.run("first", () => 1);
      throw new RetryAfterError("later", duration);
    });
    expect(await run.invoke()).toMatchObject({ type: "retry", wakeAt: T0 + ms, error: { name: "RetryAfterError" }, handlerFailures: { count: 1, unitSeq: 1 } });
  });

  it("serializes a non-Error throw", async () => {
    const run = createRun(async () => {
      throw { code: 42 };
    });
    run.handlerFailures = { count: 4, unitSeq: 0 };
    expect(await run.invoke()).toEqual({ type: "failed", error: { name: "Error", message: '{"code":42}' } });
  });

  it("lets a step that was running when a parallel branch threw finish and stores it, so it never runs again", async () => {
    const clock = new FakeClock(T0);
    let charges = 0;
    const validate = () => after(clock, 10).then(() => Promise.reject(new Error("invalid order")));
    const run = createRun(
      async ({ step }) => {
        await Promise.all([step.run("charge", () => after(clock, 1500).then(() => ++charges)), validate()]);
        return "unreachable";
      },
      { clock, retries: 2 },
    );
    expect(await run.drive()).toMatchObject({ type: "failed", error: { message: "invalid order" } });
    expect(run.outcomes.map((o) => o.type)).toEqual(["retry", "retry", "failed"]);
    expect(charges).toBe(1);
    expect(run.step("charge")).toMatchObject({ status: "completed", output: 1 });
  });
});

describe("executeRun: outputs", () => {
  it("turns undefined into null, for steps and for the handler", async () => {
    let seen: unknown = "not set";
    const run = createRun(async ({ step }) => {
      seen = await step.run("nothing", () => undefined);
      return undefined;
    });
    expect(await run.invoke()).toEqual({ type: "completed", output: null });
    expect(seen).toBeNull();
    expect(run.step("nothing")).toMatchObject({ status: "completed", output: null });
  });

  it("returns the JSON round-trip of a step's result, on the first run and on replay", async () => {
    const seen: unknown[] = [];
    const run = createRun(async ({ step }) => {
      const value = await step.run("dated", () => ({ at: new Date(T0), skip: undefined, list: [1, undefined] }));
      seen.push(value);
      await step.sleep("nap", "1s");
      return value;
    });
    const outcome = await run.drive();
    const expected = { at: "2026-01-01T00:00:00.000Z", list: [1, null] };
    expect(seen).toEqual([expected, expected]);
    expect(typeof (seen[0] as { at: unknown }).at).toBe("string");
    expect(outcome).toEqual({ type: "completed", output: expected });
  });

  it("returns the JSON round-trip of the handler's output", async () => {
    expect(await createRun(async () => ({ at: new Date(T0) })).invoke()).toEqual({ type: "completed", output: { at: "2026-01-01T00:00:00.000Z" } });
  });

  it("fails a step with non-serializable (circular) output for good, saying so", async () => {
    let calls = 0;
    const run = createRun(async ({ step }) =>
      step.run("circular", () => {
        calls++;
        const node: { self?: unknown } = {};
        node.self = node;
        return node;
      }),
    );
    expect((await run.invoke()).type).toBe("failed");
    expect(calls).toBe(1);
    expect(run.step("circular")).toMatchObject({ status: "failed", attempts: 1, error: { name: "NonRetriableError" } });
    expect(run.step("circular")?.error?.message).toContain('step "circular" output is not JSON-serializable');
  });

  it("fails the run when the handler's output is not serializable", async () => {
    const outcome = await createRun(async () => ({ big: 10n })).invoke();
    expect(outcome.type).toBe("failed");
    expect((outcome as { error: { message: string } }).error.message).toContain("handler output is not JSON-serializable");
  });

  it("accepts a step output of exactly 4 MiB and fails one above it with a message naming the limit", async () => {
    let caught: StepError | undefined;
    const run = createRun(async ({ step }) => {
      // A JSON string is its characters plus two quotes.
      const atLimit = await step.run("at-limit", () => "a".repeat(MAX_STEP_OUTPUT_BYTES - 2));
      try {
        await step.run("too-big", () => "b".repeat(MAX_STEP_OUTPUT_BYTES));
      } catch (err) {
        caught = err as StepError;
      }
      return atLimit.length;
    });
    expect(await run.invoke()).toEqual({ type: "completed", output: MAX_STEP_OUTPUT_BYTES - 2 });
    expect(caught).toBeInstanceOf(StepError);
    expect(caught?.error.name).toBe("NonRetriableError");
    expect(caught?.error.message).toContain('step "too-big" output is 4.0 MiB; the limit is 4 MiB');
    expect(run.step("too-big")).toMatchObject({ status: "failed", attempts: 1 });
  });

  it("fails the step that would take the run's state past 32 MiB", async () => {
    const run = createRun(async ({ step }) => {
      for (let i = 0; i < 8; i++) await step.run("chunk", () => "c".repeat(MAX_STEP_OUTPUT_BYTES - 2));
      await step.run("one-more", () => "d");
      return "unreachable";
    });
    expect((await run.invoke()).type).toBe("failed");
    expect(run.step("one-more")).toMatchObject({ status: "failed", error: { name: "NonRetriableError" } });
    expect(run.step("one-more")?.error?.message).toContain("the limit is 32 MiB per run");
  });

  it("does not let the handler's changes to a step result leak into the stored result", async () => {
    const run = createRun(async ({ step }) => {
      const cart = await step.run("load-cart", () => ({ items: ["apple"] }));
      cart.items.push("pear");
      await step.sleep("nap", "1m");
      return cart;
    });
    expect(await run.drive()).toEqual({ type: "completed", output: { items: ["apple", "pear"] } });
    expect(run.step("load-cart")).toMatchObject({ output: { items: ["apple"] } });
  });
});

describe("executeRun: limits", () => {
  it(`runs ${MAX_STEPS_PER_RUN} steps and fails the run at the next one with a message naming the limit`, async () => {
    let ran = 0;
    let extraRan = 0;
    const run = createRun(async ({ step }) => {
      await Promise.all(Array.from({ length: MAX_STEPS_PER_RUN }, (_, i) => step.run("s", () => (ran++, i))));
      await step.run("one-too-many", () => ++extraRan);
      return "unreachable";
    });
    const outcome = await run.invoke();
    expect(outcome).toMatchObject({ type: "failed", error: { name: "NonRetriableError" } });
    expect((outcome as { error: { message: string } }).error.message).toContain("the limit is 1000 steps per run");
    expect((outcome as { error: { message: string } }).error.message).toContain('"one-too-many"');
    expect(ran).toBe(MAX_STEPS_PER_RUN);
    expect(extraRan).toBe(0);
    expect(run.steps.size).toBe(MAX_STEPS_PER_RUN);
  });
});

describe("executeRun: cancellation", () => {
  it('answers "cancelled" and runs no new step body once the run is cancelled', async () => {
    const calls = { first: 0, second: 0 };
    const run = createRun(async ({ step }) => {
      await step.run("first", () => ++calls.first);
      await step.sleep("nap", "1h");
      await step.run("second", () => ++calls.second);
      return "finished";
    });
    expect((await run.invoke()).type).toBe("suspended");
    run.cancelled = true;
    run.clock.advanceTo(T0 + HOUR);
    expect(await run.invoke()).toEqual({ type: "cancelled" });
    expect(calls).toEqual({ first: 1, second: 0 });
    expect(run.step("second")).toBeUndefined();
  });

  it("discards the result of a step that was running when the run was cancelled", async () => {
    let next = 0;
    const run = createRun(async ({ step }) => {
      await step.run("in-flight", () => {
        run.cancelled = true;
        return "late result";
      });
      await step.run("next", () => ++next);
      return "finished";
    });
    expect(await run.invoke()).toEqual({ type: "cancelled" });
    expect(run.saved).toEqual([]);
    expect(next).toBe(0);
  });

  it("does not send events once the run is cancelled", async () => {
    const prepareEvents = vi.fn((events: EventPayload[]) => events.map((e, i) => ({ id: `e${i}`, name: e.name, data: {}, ts: T0 })));
    const run = createRun(async ({ step }) => step.sendEvent("notify", { name: "shop/order.paid", data: {} }), { prepareEvents });
    run.cancelled = true;
    expect(await run.invoke()).toEqual({ type: "cancelled" });
    expect(prepareEvents).not.toHaveBeenCalled();
    expect(run.sentEvents).toEqual([]);
  });

  it("does not start a new sleep once the run is cancelled", async () => {
    const run = createRun(async ({ step }) => {
      await step.sleep("nap", "1h");
      return "finished";
    });
    run.cancelled = true;
    expect(await run.invoke()).toEqual({ type: "cancelled" });
    expect(run.saved).toEqual([]);
  });
});

describe("executeRun: sendEvent", () => {
  it("sends once across replays, with the events in the step's save, and returns the same ids every time", async () => {
    const idsSeen: string[][] = [];
    const run = createRun(async ({ step }) => {
      const { ids } = await step.sendEvent("notify", { name: "shop/order.paid", data: { orderId: "o-1" } });
      idsSeen.push(ids);
      await step.sleep("nap", "1m");
      return ids;
    });
    const id = sendEventId("run-1", "notify", 0);
    expect(await run.drive()).toEqual({ type: "completed", output: [id] });
    expect(run.outcomes).toHaveLength(2);
    expect(run.sentEvents).toEqual([{ id, name: "shop/order.paid", data: { orderId: "o-1" }, ts: T0 }]);
    expect(idsSeen).toEqual([[id], [id]]);
    expect(run.step("notify")).toMatchObject({ kind: "sendEvent", status: "completed", output: { ids: [id] } });
  });

  it("passes an array of events through as one send, keeping an id the sender gave", async () => {
    const events = [
      { name: "a/one", data: { n: 1 } },
      { name: "a/two", data: { n: 2 }, id: "mine" },
    ];
    const outcome = await createRun(async ({ step }) => step.sendEvent("fan-out", events)).invoke();
    expect(outcome).toEqual({ type: "completed", output: { ids: [sendEventId("run-1", "fan-out", 0), "mine"] } });
  });

  it("returns { ids: [] } for no events", async () => {
    const run = createRun(async ({ step }) => step.sendEvent("nothing", []));
    expect(await run.invoke()).toEqual({ type: "completed", output: { ids: [] } });
    expect(run.sentEvents).toEqual([]);
  });

  it("gives the same ids to a send the runtime cut before it was stored", async () => {
    const prepared: string[][] = [];
    const run = createRun(async ({ step }) => (await step.sendEvent("notify", [{ name: "a/one" }, { name: "a/two" }])).ids, {
      prepareEvents: (events, idAt) => {
        const stored = events.map((event, position) => ({ id: idAt(position), name: event.name, data: {}, ts: T0 }));
        prepared.push(stored.map((event) => event.id));
        return stored;
      },
      crash: (invocation) => (invocation === 0 ? { atSave: 1 } : undefined),
    });
    const ids = [sendEventId("run-1", "notify", 0), sendEventId("run-1", "notify", 1)];
    expect(await run.drive()).toEqual({ type: "completed", output: ids });
    expect(prepared).toEqual([ids, ids]);
    expect(run.sentEvents.map((event) => event.id)).toEqual(ids);
    expect(run.step("notify")).toMatchObject({ attempts: 2, status: "completed" });
  });

  it("fails the step for good when the host refuses an event's name", async () => {
    let caught: StepError | undefined;
    const run = createRun(
      async ({ step }) => {
        try {
          await step.sendEvent("fake-internal", { name: "inngest/function.failed", data: {} });
        } catch (err) {
          caught = err as StepError;
        }
        return "went on";
      },
      {
        prepareEvents: (events, idAt) =>
          events.map((event, position) => {
            if (event.name.startsWith("inngest/")) throw new NonRetriableError(`event name "${event.name}" is reserved`);
            return { id: idAt(position), name: event.name, data: {}, ts: T0 };
          }),
      },
    );
    expect(await run.invoke()).toEqual({ type: "completed", output: "went on" });
    expect(caught).toBeInstanceOf(StepError);
    expect(caught?.error).toMatchObject({ name: "NonRetriableError", message: 'event name "inngest/function.failed" is reserved' });
    expect(run.step("fake-internal")).toMatchObject({ status: "failed", attempts: 1 });
    expect(run.sentEvents).toEqual([]);
  });
});

describe("executeRun: recovering from a dead invocation", () => {
  it("counts a step the runtime died under as a failed attempt, and runs it again only after the backoff", async () => {
    let runs = 0;
    const run = createRun(async ({ step }) => step.run("heavy", () => ++runs));
    // The runtime dies as the step's result is being stored.
    expect(await run.invoke({ atSave: 1 })).toEqual({ type: "crashed" });
    expect(runs).toBe(1);
    expect(run.steps.size).toBe(0);

    // The watchdog wakes the run: the step is not run again, it failed an attempt.
    run.clock.advance(10 * SECOND);
    const recoveredAt = run.clock.now();
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: recoveredAt + backoff(1) });
    expect(runs).toBe(1);
    expect(run.step("heavy")).toMatchObject({ status: "retrying", attempts: 1, error: { name: "RuntimeDiedError" } });

    run.clock.advanceTo(recoveredAt + backoff(1));
    expect(await run.invoke()).toEqual({ type: "completed", output: 2 });
    expect(run.step("heavy")).toMatchObject({ status: "completed", attempts: 2 });
  });

  it("throws a StepError into the handler when the death used the last attempt", async () => {
    let runs = 0;
    const run = createRun(
      async ({ step }) => {
        try {
          return await step.run("heavy", () => ++runs);
        } catch (err) {
          return `caught ${(err as StepError).error.name}`;
        }
      },
      { retries: 0, crash: (invocation) => (invocation === 0 ? { atYield: 1 } : undefined) },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: "caught RuntimeDiedError" });
    expect(run.outcomes.map((o) => o.type)).toEqual(["crashed", "completed"]);
    expect(runs).toBe(1);
    expect(run.step("heavy")).toMatchObject({ status: "failed", attempts: 1, error: { name: "RuntimeDiedError" } });
  });
});

describe("executeRun: a host whose invocation start is not durable yet", () => {
  function hostWith(ready: Promise<void>): RunHost & { saved: StepRecord[] } {
    const saved: StepRecord[] = [];
    return {
      saved,
      steps: new Map(),
      saveStep: (record) => void saved.push(record),
      prepareEvents: () => [],
      isCancelled: () => false,
      clock: new FakeClock(T0),
      ready,
    };
  }
  const input = { runId: "run-1", events: [EVENT], handlerFailures: { count: 0, unitSeq: 0 }, retries: 4, stepTimeoutMs: HOUR, logger: memoryLogger().logger, starts: [{ at: T0, seq: 0 }], recovering: false };

  it("runs no step body before the host says the start is durable", async () => {
    let release!: () => void;
    const host = hostWith(new Promise<void>((resolve) => (release = resolve)));
    let ran = 0;
    const outcome = executeRun(async ({ step }) => step.run("a", () => ++ran), input, host);
    await turns(20);
    expect(ran).toBe(0);
    release();
    expect(await outcome).toEqual({ type: "completed", output: 1 });
    expect(host.saved.map((record) => record.name)).toEqual(["a"]);
  });

  it("breaks the invocation, running no body, when the start cannot be made durable", async () => {
    const host = hostWith(Promise.reject(new Error("storage is gone")));
    let ran = 0;
    await expect(executeRun(async ({ step }) => step.run("a", () => ++ran), input, host)).rejects.toThrow("storage is gone");
    expect(ran).toBe(0);
  });
});

describe("executeRun: logging", () => {
  it("does not repeat lines written outside steps on replay; lines in step bodies are written each time a body runs", async () => {
    const { logger, lines } = memoryLogger();
    const run = createRun(
      async (ctx) => {
        const { step, logger } = ctx;
        logger.info("before");
        await Promise.all([
          step.run("stored", () => logger.info("in stored")),
          step.run("flaky", () => {
            logger.info(`in flaky, attempt ${ctx.attempt}`);
            if (ctx.attempt === 0) throw new Error("flaked");
          }),
        ]);
        logger.info("after");
        return "done";
      },
      { logger },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: "done" });
    expect(run.outcomes).toHaveLength(2);
    expect(lines).toEqual(["before", "in stored", "in flaky, attempt 0", "in flaky, attempt 1", "after"]);
  });
});

describe("step timeout", () => {
  it("fails a step body that never settles, retriably, naming the stepTimeout", async () => {
    const run = createRun(async ({ step }) => step.run("hangs", () => new Promise(() => {})), { stepTimeoutMs: 20 });
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + 20 + backoff(1) });
    expect(run.step("hangs")).toMatchObject({ name: "hangs", status: "retrying", attempts: 1, error: { name: "StepTimeoutError" } });
    expect(run.step("hangs")?.error?.message).toContain("stepTimeout");
  });

  it("throws a StepError once a hanging step has used its retries", async () => {
    const outcome = await createRun(async ({ step }) => step.run("hangs", () => new Promise(() => {})), { stepTimeoutMs: 20, retries: 0 }).invoke();
    expect(outcome).toMatchObject({ type: "failed", error: { name: "StepError", stepId: "hangs" } });
    expect((outcome as { error: { message: string } }).error.message).toContain('step "hangs" did not finish within 20 ms');
  });

  it("fails a handler whose own code hangs between steps, as an error outside steps", async () => {
    const run = createRun(
      async ({ step }) => {
        await step.run("first", () => 1);
        await new Promise(() => {});
      },
      { stepTimeoutMs: 20, retries: 1 },
    );
    expect(await run.invoke()).toMatchObject({ type: "retry", error: { name: "StepTimeoutError" } });
    expect([...run.steps.values()].map((s) => s.status)).toEqual(["completed"]);
  });
});

describe("after an invocation ends", () => {
  it("starts no step from handler code that was still running when the run suspended", async () => {
    let lateRuns = 0;
    const run = createRun(async ({ step }) => {
      await Promise.all([
        step.sleep("nap", "1h"),
        (async () => {
          await turns(30);
          await step.run("late", () => ++lateRuns);
        })(),
      ]);
    });
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + HOUR });
    await turns(60);
    expect(lateRuns).toBe(0);
    expect([...run.steps.values()].map((s) => s.name)).toEqual(["nap"]);
  });

  it("fails at once, without retries, on a sleep duration it cannot read", async () => {
    const outcome = await createRun(async ({ step }) => step.sleep("nap", "soon-ish")).invoke();
    expect(outcome).toMatchObject({ type: "failed", error: { name: "NonRetriableError" } });
    expect((outcome as { error: { message: string } }).error.message).toContain("invalid duration");
  });
});
