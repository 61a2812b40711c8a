import { createGroupTools } from "./group.ts";
import { describe, expect, it } from "vitest";
import { Stepflare } from "./client.ts";
import type { HandlerContext } from "./driver.ts";
import type { StoredEvent } from "./event.ts";
import { FUNCTION_FAILED_EVENT, type FailureEventData } from "./function.ts";
import type { StepTools } from "./step.ts";
import type { Logger } from "./types.ts";

const app = new Stepflare({ id: "test-app" });
const noop = async () => null;

let nextId = 0;
function eventNamed(name: string, data: Record<string, unknown> = {}): StoredEvent {
  return { id: `evt-${++nextId}`, name, data, ts: Date.parse("2026-01-01T00:00:00Z") };
}

describe("StepflareFunction: trigger matching", () => {
  it("matches an exact event name and nothing else", () => {
    const fn = app.createFunction({ id: "exact" }, { event: "shop/product.imported" }, noop);
    expect(fn.matches(eventNamed("shop/product.imported"))).toBe(true);
    expect(fn.matches(eventNamed("shop/product.imported.v2"))).toBe(false);
    expect(fn.matches(eventNamed("shop/product.deleted"))).toBe(false);
  });

  it("matches every name under a `prefix/*` wildcard", () => {
    const fn = app.createFunction({ id: "wildcard" }, { event: "shop/*" }, noop);
    expect(fn.matches(eventNamed("shop/product.imported"))).toBe(true);
    expect(fn.matches(eventNamed("shop/order.paid"))).toBe(true);
    expect(fn.matches(eventNamed("shopping/cart.updated"))).toBe(false);
    expect(fn.matches(eventNamed("other/shop/order.paid"))).toBe(false);
  });

  it("matches only events for which the CEL `if` is true", () => {
    const fn = app.createFunction({ id: "pro-only" }, { event: "user/upgraded", if: "event.data.plan == 'pro'" }, noop);
    expect(fn.matches(eventNamed("user/upgraded", { plan: "pro" }))).toBe(true);
    expect(fn.matches(eventNamed("user/upgraded", { plan: "free" }))).toBe(false);
    expect(fn.matches(eventNamed("user/other", { plan: "pro" }))).toBe(false);
  });

  it("treats an `if` that reads a missing field as a non-match, and tells the logger it is given why", () => {
    const fn = app.createFunction({ id: "missing-field" }, { event: "user/upgraded", if: "event.data.plan == 'pro'" }, noop);
    expect(fn.matches(eventNamed("user/upgraded", {}))).toBe(false);
    const warnings: unknown[][] = [];
    const logger: Logger = { debug: () => {}, info: () => {}, warn: (...args) => warnings.push(args), error: () => {} };
    expect(fn.matches(eventNamed("user/upgraded", {}), logger)).toBe(false);
    expect(warnings).toEqual([
      ["trigger expression failed; the event does not match", { function_id: "missing-field", expression: "event.data.plan == 'pro'", error: expect.any(String) }],
    ]);
  });

  it("runs on any of several triggers", () => {
    const fn = app.createFunction({ id: "several" }, [{ event: "a/one" }, { event: "b/two", if: "event.data.ok == true" }], noop);
    expect(fn.matches(eventNamed("a/one"))).toBe(true);
    expect(fn.matches(eventNamed("b/two", { ok: true }))).toBe(true);
    expect(fn.matches(eventNamed("b/two", { ok: false }))).toBe(false);
    expect(fn.triggers).toHaveLength(2);
  });
});

describe("StepflareFunction: config", () => {
  it("defaults retries to 4 and name to the id", () => {
    const fn = app.createFunction({ id: "defaults" }, { event: "a/b" }, noop);
    expect(fn.retries).toBe(4);
    expect(fn.name).toBe("defaults");
  });

  it("rejects an invalid CEL expression at creation, naming the function and the expression", () => {
    const create = () => app.createFunction({ id: "bad-cel" }, { event: "a/b", if: "event.data.x ==" }, noop);
    expect(create).toThrow(TypeError);
    expect(create).toThrow(/function "bad-cel"/);
    expect(create).toThrow(/"event\.data\.x =="/);
  });

  it("rejects an option it does not know, by name, rather than ignoring it", () => {
    const config = { id: "flow", concurency: { limit: 1 } } as unknown as Parameters<typeof app.createFunction>[0];
    expect(() => app.createFunction(config, { event: "a/b" }, noop)).toThrow(/concurency/);
  });

  it("validates flow-control options with errors that name the option", () => {
    const create = (config: Record<string, unknown>) => () => app.createFunction({ id: "flow", ...config } as Parameters<typeof app.createFunction>[0], { event: "a/b" }, noop);
    expect(create({ concurrency: 0 })).toThrow(/concurrency/);
    expect(create({ throttle: { limit: 1, period: "10ms" } })).toThrow(/throttle.period must be between/);
    expect(create({ rateLimit: { limit: 1, period: "1h", key: "event.data ==" } })).toThrow(/rateLimit.key: invalid expression/);
    expect(create({ batchEvents: { maxSize: 10, timeout: "2m" } })).toThrow(/batchEvents.timeout/);
    expect(create({ debounce: { period: "1s" }, batchEvents: { maxSize: 2, timeout: "1s" } })).toThrow(/cannot be combined/);
    expect(create({ singleton: { mode: "wait" } })).toThrow(/singleton/);
    expect(create({ priority: { run: "))" } })).toThrow(/priority.run/);
  });

  it.each([-1, 21, 1.5])("rejects retries %d (allowed: 0..20)", (retries) => {
    expect(() => app.createFunction({ id: "retries", retries }, { event: "a/b" }, noop)).toThrow(/retries/);
  });

  it.each([0, 20])("accepts retries %d", (retries) => {
    expect(app.createFunction({ id: "retries", retries }, { event: "a/b" }, noop).retries).toBe(retries);
  });

  it("rejects an empty id and an id longer than 255 characters", () => {
    expect(() => app.createFunction({ id: "" }, { event: "a/b" }, noop)).toThrow(TypeError);
    expect(() => app.createFunction({ id: "x".repeat(256) }, { event: "a/b" }, noop)).toThrow(TypeError);
  });

  it("rejects a handler that is not a function, and no triggers", () => {
    const notAHandler = "nope" as unknown as typeof noop;
    expect(() => app.createFunction({ id: "no-handler" }, { event: "a/b" }, notAHandler)).toThrow(/handler must be a function/);
    expect(() => app.createFunction({ id: "no-triggers" }, [], noop)).toThrow(/triggers/);
  });
});

describe("StepflareFunction: onFailure", () => {
  const failed = (functionId: string): StoredEvent<FailureEventData> => ({
    id: `evt-${++nextId}`,
    name: FUNCTION_FAILED_EVENT,
    data: {
      function_id: functionId,
      run_id: "run-1",
      error: { name: "StepError", message: 'step "charge" failed' },
      event: eventNamed("shop/order.created"),
    },
    ts: Date.parse("2026-01-01T00:00:00Z"),
  });

  it("has no failure function without onFailure", () => {
    expect(app.createFunction({ id: "plain" }, { event: "a/b" }, noop).failureFunction).toBeUndefined();
  });

  it("creates `<id>-failure`, triggered by inngest/function.failed for this function only", () => {
    const fn = app.createFunction({ id: "checkout", retries: 2, onFailure: noop }, { event: "shop/order.created" }, noop);
    const failure = fn.failureFunction;
    expect(failure?.id).toBe("checkout-failure");
    expect(failure?.retries).toBe(2);
    expect(failure?.triggers.map((t) => ("event" in t ? t.event : t.cron))).toEqual([FUNCTION_FAILED_EVENT]);
    expect(failure?.matches(failed("checkout"))).toBe(true);
    expect(failure?.matches(failed("other-function"))).toBe(false);
    expect(failure?.matches(eventNamed("shop/order.created"))).toBe(false);
  });

  it("calls onFailure with the failure event and the error rebuilt as an Error", async () => {
    let received: { event?: unknown; error?: unknown } = {};
    const fn = app.createFunction(
      {
        id: "checkout",
        onFailure: ({ event, error }) => {
          received = { event, error };
          return "handled";
        },
      },
      { event: "shop/order.created" },
      noop,
    );
    const event = failed("checkout");
    const logger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
    const ctx: HandlerContext<object> = { event, events: [event], step: {} as StepTools, group: createGroupTools({ runId: "failure-run", experimentStep: async () => "unused" }), runId: "failure-run", attempt: 0, logger };
    expect(await fn.failureFunction?.handler(ctx)).toBe("handled");
    expect(received.event).toBe(event);
    expect(received.error).toBeInstanceOf(Error);
    expect(received.error).toMatchObject({ name: "StepError", message: 'step "charge" failed' });
  });
});

describe("cron triggers", () => {
  const app = new Stepflare({ id: "crons" });
  const noop = async () => undefined;

  it("takes a cron alone or beside event triggers; an event fires only the event triggers", () => {
    const fn = app.createFunction({ id: "weekly" }, [{ cron: "TZ=Europe/Paris 0 9 * * 1" }, { event: "report/requested" }], noop);
    expect(fn.crons.map((c) => [c.source, c.pattern, c.timezone])).toEqual([["TZ=Europe/Paris 0 9 * * 1", "0 9 * * 1", "Europe/Paris"]]);
    expect(fn.matches({ id: "1", name: "report/requested", data: {}, ts: 0 })).toBe(true);
    expect(fn.matches({ id: "2", name: "inngest/scheduled.timer", data: {}, ts: 0 })).toBe(false);
    expect(app.createFunction({ id: "daily" }, { cron: "@daily" }, noop).crons).toHaveLength(1);
  });

  it("refuses a bad cron or time zone when the function is created, naming the function", () => {
    expect(() => app.createFunction({ id: "bad-cron" }, { cron: "every monday" }, noop)).toThrow(/function "bad-cron": invalid cron "every monday"/);
    expect(() => app.createFunction({ id: "bad-zone" }, { cron: "TZ=Nowhere/Land 0 9 * * *" }, noop)).toThrow(/function "bad-zone": invalid cron/);
  });
});

describe("StepflareFunction: budget", () => {
  it("takes runs, steps or both per hour or day, and refuses a budget of neither or another period", () => {
    const fn = app.createFunction({ id: "budgeted", budget: { runs: 5, period: "1h" } }, { event: "a/b" }, noop);
    expect(fn.flow.budget).toEqual({ runs: 5, period: "1h", periodMs: 3_600_000 });
    expect(fn.hasFlowControl).toBe(true);
    expect(app.createFunction({ id: "budgeted-steps", budget: { steps: 100, runs: 2, period: "1d" } }, { event: "a/b" }, noop).flow.budget?.periodMs).toBe(86_400_000);
    expect(() => app.createFunction({ id: "no-limit", budget: { period: "1h" } }, { event: "a/b" }, noop)).toThrow(/budget: a budget needs `runs`, `steps` or both/);
    // @ts-expect-error: the period is an hour or a day
    expect(() => app.createFunction({ id: "weekly", budget: { runs: 5, period: "1w" } }, { event: "a/b" }, noop)).toThrow(/budget.period/);
  });
});
