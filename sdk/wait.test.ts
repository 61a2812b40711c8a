import { describe, expect, it } from "vitest";
import { StepError } from "./errors/StepError.ts";
import type { StoredEvent } from "./event.ts";
import { FakeClock, TestRun } from "./testing.ts";
import fc from "fast-check";
import { compileExpression } from "./expression.ts";
import { answersKey, buildWaitRequest, eventMatchKeys, keyPathOf, matchesCondition, waitIndexKey } from "./wait.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const HOUR = 3_600_000;
const trigger: StoredEvent = { id: "e1", name: "app/user.signup", data: { userId: "u1", plan: "pro" }, ts: T0 };
const activated = (userId: string, extra: Record<string, unknown> = {}): StoredEvent => ({ id: `a-${userId}`, name: "app/user.activated", data: { userId, ...extra }, ts: T0 });

describe("index keys", () => {
  it("keys a `match` and a plain-equality `if` alike, and leaves other expressions to evaluation", () => {
    expect(waitIndexKey({ event: "x", match: "data.userId" }, trigger)).toEqual({ key: 'data.userId="u1"' });
    expect(waitIndexKey({ event: "x", if: "async.data.owner == event.data.userId" }, trigger)).toEqual({ key: 'data.owner="u1"' });
    expect(waitIndexKey({ event: "x", if: "event.data.userId == async.data.owner" }, trigger)).toEqual({ key: 'data.owner="u1"' });
    expect(waitIndexKey({ event: "x", if: "async.data.n > 3" }, trigger)).toEqual({ key: null, residualIf: "async.data.n > 3" });
    expect(waitIndexKey({ event: "x", match: "data.userId", if: "async.data.n > 3" }, trigger)).toEqual({ key: 'data.userId="u1"', residualIf: "async.data.n > 3" });
  });

  it("gives an incoming event one key per field at any depth, lists and maps included, so a lookup finds waits by any of them", () => {
    const keys = eventMatchKeys({ id: "i", name: "n", data: { userId: "u1", n: 2, nested: { ok: true }, list: [1], none: null }, ts: 5 })!;
    expect(keys).toEqual(expect.arrayContaining(['data.userId="u1"', "data.n=2", "data.nested.ok=true", 'name="n"', "data.list.0=1", "data.none=null"]));
    expect(keys.filter((key) => /^data\.(list|nested)=#[0-9a-f]{32}$/.test(key))).toHaveLength(2);
  });

  it("matches a condition by name, key and residual `if`", () => {
    const condition = { event: "app/user.activated", match: "data.userId", if: "async.data.n > 1" };
    expect(matchesCondition(condition, trigger, activated("u1", { n: 2 }))).toBe(true);
    expect(matchesCondition(condition, trigger, activated("u1", { n: 1 }))).toBe(false);
    expect(matchesCondition(condition, trigger, activated("u2", { n: 2 }))).toBe(false);
    expect(matchesCondition({ ...condition, event: "other" }, trigger, activated("u1", { n: 2 }))).toBe(false);
  });

  it("keys a plain equality over a list, a map or null as the incoming event keys that field (issue 20, item 10)", () => {
    const condition = { event: "app/user.activated", if: "async.data.tags == event.data.tags" };
    const withTags = (tags: unknown): StoredEvent => ({ ...trigger, data: { ...trigger.data, tags } });
    for (const [value, same, other] of [
      [["a", "b"], ["a", "b"], ["b", "a"]],
      [{ plan: "pro", seats: 3 }, { seats: 3, plan: "pro" }, { plan: "pro", seats: 4 }],
      [{ list: [1, { x: null }] }, { list: [1, { x: null }] }, { list: [1, { x: 0 }] }],
      [null, null, "null"],
    ] as const) {
      const { key } = waitIndexKey(condition, withTags(value));
      expect(eventMatchKeys(activated("u1", { tags: same }))).toContain(key);
      expect(matchesCondition(condition, withTags(value), activated("u1", { tags: same }))).toBe(true);
      expect(matchesCondition(condition, withTags(value), activated("u1", { tags: other }))).toBe(false);
      expect(matchesCondition({ event: condition.event, match: "data.tags" }, withTags(value), activated("u1", { tags: same }))).toBe(true);
    }
  });

  it("agrees with CEL's `==` on every pair of JSON values: equal keys exactly when the values are equal", () => {
    const equalInCel = compileExpression("async.data.x == event.data.x", "test");
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), fc.boolean(), (a, b, same) => {
        const [left, right] = [{ ...trigger, data: { x: a } }, activated("u1", { x: same ? structuredClone(a) : b })];
        let celSays: boolean;
        try {
          celSays = equalInCel({ event: left, async: right }) === true;
        } catch {
          celSays = false;
        }
        const { key } = waitIndexKey({ event: "app/user.activated", if: "async.data.x == event.data.x" }, left);
        expect(eventMatchKeys(right)?.includes(key!) ?? answersKey(right, key!)).toBe(celSays);
        expect(answersKey(right, key!)).toBe(celSays);
      }),
      { numRuns: 500 },
    );
  });

  it("matches a field past an event's first 256 fields, and at any depth (issue 20, item 11)", () => {
    const wide = activated("u1", Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, i])));
    expect(eventMatchKeys(wide)).toBeNull();
    expect(matchesCondition({ event: "app/user.activated", match: "data.f299" }, { ...trigger, data: { f299: 299 } }, wide)).toBe(true);
    expect(matchesCondition({ event: "app/user.activated", match: "data.f299" }, { ...trigger, data: { f299: 298 } }, wide)).toBe(false);
    let deep: Record<string, unknown> = { leaf: "v" };
    for (let i = 0; i < 20; i++) deep = { d: deep };
    const path = `data.${"d.".repeat(20)}leaf`;
    expect(matchesCondition({ event: "app/user.activated", match: path }, { ...trigger, data: deep }, activated("u1", deep))).toBe(true);
    expect(eventMatchKeys(activated("u1", deep))).toContain(`${path}="v"`);
    // So deep that a recursive walk would overflow the stack: keyed all the same.
    let deeper: unknown = ["end"];
    for (let i = 0; i < 100_000; i++) deeper = [deeper];
    expect(waitIndexKey({ event: "x", match: "data.deeper" }, { ...trigger, data: { deeper } }).key).toMatch(/^data\.deeper=#[0-9a-f]{32}$/);
  });

  it("keys a field whose name holds `=` or `%` without mistaking where its path ends", () => {
    const condition = { event: "app/user.activated", match: "data.a=b%" };
    const { key } = waitIndexKey(condition, { ...trigger, data: { "a=b%": "x=1" } });
    expect(keyPathOf(key!)).toBe("data.a=b%");
    expect(eventMatchKeys(activated("u1", { "a=b%": "x=1" }))).toContain(key);
    expect(matchesCondition(condition, { ...trigger, data: { "a=b%": "x=1" } }, activated("u1", { "a=b%": "x=1" }))).toBe(true);
  });

  it("never matches on a field the trigger lacks", () => {
    expect(matchesCondition({ event: "app/user.activated", match: "data.missing" }, trigger, activated("u1", { missing: "undefined" }))).toBe(false);
  });
});

describe("wait requests", () => {
  it("refuses unreadable options with a message that says what is wrong", () => {
    expect(() => buildWaitRequest({ event: "a", timeout: "soon" }, T0)).toThrow(/invalid duration "soon"/);
    expect(() => buildWaitRequest({ event: "a", timeout: "1h", if: "async.data.x ==" }, T0)).toThrow(/invalid expression/);
    expect(() => buildWaitRequest({ timeout: "1h" }, T0)).toThrow(/step.waitForEvent: invalid options/);
  });

  it("counts events from `lookback` before the wait began", () => {
    expect(buildWaitRequest({ event: "a", timeout: "1h", lookback: "5m" }, T0)).toMatchObject({ since: T0 - 300_000, timeoutAt: T0 + HOUR, mode: "one" });
  });
});

function createRun(handler: ConstructorParameters<typeof TestRun>[0]) {
  return new TestRun(handler, { runId: "run-1", events: [trigger], clock: new FakeClock(T0) });
}

describe("executeRun: waitForEvent", () => {
  it("suspends until the event is resolved from outside, then returns it", async () => {
    const run = createRun(async ({ step }) => {
      const event = await step.waitForEvent("activation", { event: "app/user.activated", match: "data.userId", timeout: "1h" });
      return event?.data;
    });
    expect(await run.invoke()).toEqual({ type: "suspended", wakeAt: T0 + HOUR });
    expect(run.step("activation")).toMatchObject({ status: "waiting", request: { type: "wait", conditions: [{ event: "app/user.activated", match: "data.userId" }] } });
    run.clock.advance(1000);
    expect(run.resolveWait("activation", activated("u1"))).toBe(true);
    // A second event finds the step resolved.
    expect(run.resolveWait("activation", activated("u1", { n: 2 }))).toBe(false);
    expect(await run.invoke()).toEqual({ type: "completed", output: { userId: "u1" } });
  });

  it("returns null at its timeout, and refuses an event after it", async () => {
    const run = createRun(async ({ step }) => step.waitForEvent("activation", { event: "app/user.activated", timeout: "1h" }));
    await run.invoke();
    run.clock.advanceTo(T0 + HOUR);
    expect(run.resolveWait("activation", activated("u1"))).toBe(false);
    expect(await run.invoke()).toEqual({ type: "completed", output: null });
  });

  it("times out a wait with a timeout of 0 after the step before it, at the next invocation", async () => {
    // Found by the model test: the wait was stored with its timeout at the time its invocation
    // began, so replays took it as woken by that start and settled it before the step that came
    // before it; the handler, asking for that step first, never got either.
    const run = createRun(async ({ step }) => {
      await step.run("before", () => 1);
      return step.waitForEvent("now", { event: "app/user.activated", timeout: 0 });
    });
    expect(await run.drive()).toEqual({ type: "completed", output: null });
    expect(run.outcomes.map((outcome) => outcome.type)).toEqual(["suspended", "completed"]);
  });

  it("mode all: stays waiting until every condition has its event", async () => {
    const run = createRun(async ({ step }) => {
      const all = await step.waitForEvent("both", { events: ["a/one", "a/two"], mode: "all", timeout: "1h" });
      return all?.map((event) => event.name);
    });
    await run.invoke();
    expect(run.resolveWait("both", { id: "2", name: "a/two", data: {}, ts: T0 }, 1)).toBe(true);
    expect(run.step("both")?.status).toBe("waiting");
    expect(run.resolveWait("both", { id: "2b", name: "a/two", data: {}, ts: T0 }, 1)).toBe(false);
    expect(run.resolveWait("both", { id: "1", name: "a/one", data: {}, ts: T0 }, 0)).toBe(true);
    expect(await run.invoke()).toEqual({ type: "completed", output: ["a/one", "a/two"] });
  });

  it("takes the same branch on every replay when a wait races a sleep", async () => {
    const paths: string[] = [];
    const run = createRun(async ({ step }) => {
      const winner = await Promise.race([
        step.waitForEvent("reply", { event: "a/reply", timeout: "1h" }).then(() => "reply"),
        step.sleep("deadline", "10m").then(() => "deadline"),
      ]);
      paths.push(winner);
      await step.sleep("after", "1h");
      return winner;
    });
    await run.invoke();
    run.clock.advance(60_000);
    run.resolveWait("reply", { id: "r", name: "a/reply", data: {}, ts: T0 });
    await run.drive();
    // The reply came first (1 min, before the 10 min deadline): every pass that got past the race took "reply".
    expect(paths.length).toBeGreaterThan(1);
    expect(new Set(paths)).toEqual(new Set(["reply"]));
    expect(run.outcomes.at(-1)).toEqual({ type: "completed", output: "reply" });
  });

  it("settles a wait resolved while the invocation still ran after everything that invocation stored", async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const run = createRun(async ({ step }) => {
      await Promise.all([
        step.waitForEvent("reply", { event: "a/reply", timeout: "1h" }).then(() => order.push("reply")),
        step.run("slow", () => gate).then(() => order.push("slow")),
      ]);
      return order.join(",");
    });
    const first = run.invoke();
    await new Promise((resolve) => setImmediate(resolve));
    // The reply comes while "slow" runs; the invocation in progress never sees it.
    run.resolveWait("reply", { id: "r", name: "a/reply", data: {}, ts: T0 });
    release();
    expect((await first).type).toBe("suspended");
    expect(order).toEqual(["slow"]);
    order.length = 0;
    expect(await run.invoke()).toEqual({ type: "completed", output: "slow,reply" });
  });

  it("settles two waits resolved between the same invocations in the order their events came", async () => {
    const run = createRun(async ({ step }) =>
      Promise.race([
        step.waitForEvent("x", { event: "a/x", timeout: "1h" }).then(() => "x"),
        step.waitForEvent("y", { event: "a/y", timeout: "1h" }).then(() => "y"),
      ]),
    );
    await run.invoke();
    run.clock.advance(1000);
    run.resolveWait("y", { id: "y", name: "a/y", data: {}, ts: T0 });
    run.clock.advance(1000);
    run.resolveWait("x", { id: "x", name: "a/x", data: {}, ts: T0 });
    expect(await run.invoke()).toEqual({ type: "completed", output: "y" });
  });
});

describe("executeRun: invoke", () => {
  it("throws at a timeout of 0 after the step before it, at the next invocation", async () => {
    const run = createRun(async ({ step }) => {
      await step.run("before", () => 1);
      return step.invoke("child", { function: "child", timeout: 0 }).catch((err: unknown) => (err instanceof StepError ? err.error.name : "other"));
    });
    expect(await run.drive()).toEqual({ type: "completed", output: "InngestInvokeTimeoutError" });
    expect(run.outcomes.map((outcome) => outcome.type)).toEqual(["suspended", "completed"]);
  });

  it("returns the child's output, and throws its error or a timeout as a StepError", async () => {
    const run = createRun(async ({ step }) => {
      const caught: string[] = [];
      const a = await step.invoke("a", { function: "child", data: { n: 1 } });
      try {
        await step.invoke("b", { function: { id: "child" }, data: {} });
      } catch (err) {
        caught.push(err instanceof StepError ? err.error.name : "other");
      }
      try {
        await step.invoke("c", { function: "child", timeout: "1m" });
      } catch (err) {
        caught.push(err instanceof StepError ? err.error.name : "other");
      }
      return { a, caught };
    });
    await run.invoke();
    expect(run.step("a")).toMatchObject({ status: "waiting", request: { type: "invoke", functionId: "child", data: { n: 1 } } });
    run.resolveInvoke("a", { output: { doubled: 2 } });
    await run.invoke();
    run.resolveInvoke("b", { error: { name: "Error", message: "child broke" } });
    await run.invoke();
    run.clock.advance(60_000);
    expect(await run.invoke()).toEqual({ type: "completed", output: { a: { doubled: 2 }, caught: ["Error", "InngestInvokeTimeoutError"] } });
  });
});
