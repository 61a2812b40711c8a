import { describe, expect, expectTypeOf, it } from "vitest";
import { Stepflare } from "../client.ts";
import { NonRetriableError } from "../errors/NonRetriableError.ts";
import { TestRun } from "../testing.ts";
import { dependencyInjectionMiddleware } from "./dependencyInjection.ts";
import { Middleware } from "./middleware.ts";

/** A logging middleware of the shape Inngest's docs show: it writes a line per hook to `lines`. */
function loggingMiddleware(lines: string[]) {
  return class Logging extends Middleware.BaseMiddleware {
    readonly id = "logging";
    override onRunStart() {
      lines.push("run start");
    }
    override onMemoizationEnd() {
      lines.push("memoization end");
    }
    override onStepStart({ stepInfo }: Middleware.OnStepStartArgs) {
      lines.push(`start ${stepInfo.options.id} (${stepInfo.stepType})`);
    }
    override onStepComplete({ stepInfo, output }: Middleware.OnStepCompleteArgs) {
      lines.push(`complete ${stepInfo.options.id} ${JSON.stringify(output)}`);
    }
    override onStepError({ stepInfo, error, isFinalAttempt }: Middleware.OnStepErrorArgs) {
      lines.push(`error ${stepInfo.options.id} ${error.message} final=${isFinalAttempt}`);
    }
    override async wrapStep({ next, stepInfo }: Middleware.WrapStepArgs) {
      lines.push(`wrap ${stepInfo.options.id} memoized=${stepInfo.memoized}`);
      return next();
    }
    override onRunComplete({ output }: Middleware.OnRunCompleteArgs) {
      lines.push(`run complete ${JSON.stringify(output)}`);
    }
    override onRunError({ error, isFinalAttempt }: Middleware.OnRunErrorArgs) {
      lines.push(`run error ${error.message} final=${isFinalAttempt}`);
    }
  };
}

describe("v4 middleware in a run", () => {
  it("sees each step run once across a replay; a replayed step is memoized, not started again", async () => {
    const lines: string[] = [];
    const run = new TestRun(
      async ({ step }) => {
        const a = await step.run("a", () => 1);
        await step.sleep("nap", "1m");
        const b = await step.run("b", () => a + 1);
        return { a, b };
      },
      { middleware: [loggingMiddleware(lines)] },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: { a: 1, b: 2 } });
    expect(lines).toEqual([
      // First invocation: a runs, the sleep suspends the run.
      "run start",
      "memoization end",
      "wrap a memoized=false",
      "start a (run)",
      "complete a 1",
      "wrap nap memoized=false",
      // Second: a and the sleep replay from the run's state; only b runs.
      "wrap a memoized=true",
      "wrap nap memoized=true",
      "memoization end",
      "wrap b memoized=false",
      "start b (run)",
      "complete b 2",
      "run complete {\"a\":1,\"b\":2}",
    ]);
  });

  it("tells a step's failed attempts apart from its last, and the run's error", async () => {
    const lines: string[] = [];
    let attempts = 0;
    const run = new TestRun(
      async ({ step }) => {
        await step.run("flaky", () => {
          attempts++;
          throw attempts === 1 ? new Error("once") : new NonRetriableError("for good");
        });
      },
      { retries: 3, middleware: [loggingMiddleware(lines)] },
    );
    expect(await run.drive()).toMatchObject({ type: "failed" });
    expect(lines.filter((line) => line.startsWith("error") || line.startsWith("run error"))).toEqual([
      "error flaky once final=false",
      "error flaky for good final=true",
      "run error for good final=true",
    ]);
  });

  it("transforms step output (wrapStep) and the function's output (wrapFunctionHandler), on replay too", async () => {
    class Dates extends Middleware.BaseMiddleware {
      readonly id = "dates";
      override async wrapStep({ next }: Middleware.WrapStepArgs) {
        const output = await next();
        return typeof output === "string" && /^\d{4}-\d\d-\d\dT/.test(output) ? new Date(output) : output;
      }
      override async wrapFunctionHandler({ next }: Middleware.WrapFunctionHandlerArgs) {
        return { wrapped: await next() };
      }
    }
    const run = new TestRun(
      async ({ step }) => {
        const at = (await step.run("when", () => new Date(Date.UTC(2026, 0, 2)))) as unknown as Date;
        await step.sleep("nap", "1m");
        return at instanceof Date ? at.getUTCDate() : "not a date";
      },
      { middleware: [Dates] },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: { wrapped: 2 } });
  });

  it("changes the events step.sendEvent sends (transformSendEvent) and wraps the send, once across a replay", async () => {
    const sends: string[][] = [];
    class Tenant extends Middleware.BaseMiddleware {
      readonly id = "tenant";
      override transformSendEvent(arg: Middleware.TransformSendEventArgs) {
        return { ...arg, events: arg.events.map((event) => ({ ...event, data: { ...event.data, tenant: "acme" } })) };
      }
      override async wrapSendEvent({ events, next, fn }: Middleware.WrapSendEventArgs) {
        sends.push(events.map((event) => `${fn?.id()}:${event.name}:${String(event.data?.tenant)}`));
        return next();
      }
    }
    const run = new TestRun(
      async ({ step }) => {
        const { ids } = await step.sendEvent("notify", { name: "shop/order.shipped", data: { orderId: "o1" } });
        await step.sleep("nap", "1m");
        return ids.length;
      },
      { middleware: [Tenant] },
    );
    expect(await run.drive()).toEqual({ type: "completed", output: 1 });
    expect(run.sentEvents.map((event) => event.data)).toEqual([{ orderId: "o1", tenant: "acme" }]);
    expect(sends).toEqual([["test-fn:shop/order.shipped:acme"]]);
  });

  it("runs the client's middleware around the function's, the first given outermost", async () => {
    const order: string[] = [];
    const layer = (name: string) =>
      class extends Middleware.BaseMiddleware {
        readonly id = name;
        override async wrapFunctionHandler({ next }: Middleware.WrapFunctionHandlerArgs) {
          order.push(`${name} in`);
          const output = await next();
          order.push(`${name} out`);
          return output;
        }
      };
    const registered: string[] = [];
    const Client = layer("client");
    const Fn = Object.assign(layer("fn"), { onRegister: ({ fn }: Middleware.OnRegisterArgs) => registered.push(`fn registered on ${fn?.id()}`) });
    const app = new Stepflare({ id: "mw", middleware: [Client] });
    const fn = app.createFunction({ id: "layers", triggers: [{ event: "e" }], middleware: [Fn] }, async () => "done");
    expect(registered).toEqual(["fn registered on layers"]);
    expect(await new TestRun(fn.handler, { middleware: fn.middlewareSetup()! }).drive()).toEqual({ type: "completed", output: "done" });
    expect(order).toEqual(["client in", "fn in", "fn out", "client out"]);
  });
});

describe("dependencyInjectionMiddleware", () => {
  it("adds its values to the handler's context, typed, from the client and from the function", async () => {
    const db = { find: (id: string) => ({ id, name: "Ada" }) };
    const app = new Stepflare({ id: "di", middleware: [dependencyInjectionMiddleware({ db })] });
    const fn = app.createFunction(
      { id: "lookup", triggers: [{ event: "user/seen" }], middleware: [dependencyInjectionMiddleware({ greeting: "hello" as const })] },
      async ({ event, step, db, greeting, attempt }) => {
        expectTypeOf(db).toEqualTypeOf<{ find: (id: string) => { id: string; name: string } }>();
        expectTypeOf(greeting).toEqualTypeOf<"hello">();
        expectTypeOf(attempt).toEqualTypeOf<number>();
        const user = await step.run("load", () => db.find(String(event.data.userId)));
        return `${greeting} ${user.name}`;
      },
    );
    const run = new TestRun(fn.handler, { middleware: fn.middlewareSetup()!, events: [{ id: "e1", name: "user/seen", data: { userId: "u1" }, ts: 0 }] });
    expect(await run.drive()).toEqual({ type: "completed", output: "hello Ada" });
  });

  it("keeps ctx.attempt live: a step body reads its own attempt", async () => {
    const seen: number[] = [];
    const run = new TestRun(
      async (ctx) => {
        await ctx.step.run("flaky", () => {
          seen.push(ctx.attempt);
          if (ctx.attempt < 2) throw new Error("again");
        });
      },
      { middleware: [dependencyInjectionMiddleware({ x: 1 })] },
    );
    expect(await run.drive()).toMatchObject({ type: "completed" });
    expect(seen).toEqual([0, 1, 2]);
  });
});

describe("client.send through middleware", () => {
  it("transforms and wraps the events the client sends, with fn null", async () => {
    const seen: unknown[] = [];
    class Stamp extends Middleware.BaseMiddleware {
      readonly id = "stamp";
      override transformSendEvent(arg: Middleware.TransformSendEventArgs) {
        return { ...arg, events: arg.events.map((event) => ({ ...event, v: "2" })) };
      }
      override async wrapSendEvent({ events, fn, next }: Middleware.WrapSendEventArgs) {
        seen.push({ fn, events });
        const { ids } = await next();
        return { ids: ids.map((id) => `wrapped-${id}`) };
      }
    }
    const app = new Stepflare({ id: "send", middleware: [Stamp] });
    const delivered: unknown[] = [];
    app.useSender(async (events) => {
      delivered.push(...events);
      return { ids: events.map((_, i) => `id${i}`) };
    });
    expect(await app.send({ name: "a/b", data: {} })).toEqual({ ids: ["wrapped-id0"] });
    expect(delivered).toEqual([{ name: "a/b", data: {}, v: "2" }]);
    expect(seen).toEqual([{ fn: null, events: [{ name: "a/b", data: {}, v: "2" }] }]);
  });
});
