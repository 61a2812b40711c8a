import { describe, expect, expectTypeOf, it } from "vitest";
import { Stepflare } from "../client.ts";
import type { EventPayload } from "../event.ts";
import { TestRun } from "../testing.ts";
import { Middleware } from "./middleware.ts";
import { InngestMiddleware } from "./v3.ts";

/** A v3 middleware of the shape Inngest's v3 docs show, writing a line per hook to `lines`. */
function lifecycle(lines: string[]) {
  return new InngestMiddleware({
    name: "lifecycle",
    init({ fn }) {
      lines.push(`init fn=${fn ? fn.id() : "none"}`);
      return {
        onFunctionRun({ ctx, fn }) {
          lines.push(`onFunctionRun ${fn.name} ${ctx.event.name}`);
          return {
            transformInput({ steps }) {
              lines.push(`transformInput steps=${steps.length}`);
              return { ctx: { greeting: "hello" as const } };
            },
            beforeMemoization: () => void lines.push("beforeMemoization"),
            afterMemoization: () => void lines.push("afterMemoization"),
            beforeExecution: () => void lines.push("beforeExecution"),
            afterExecution: () => void lines.push("afterExecution"),
            transformOutput({ result, step }) {
              lines.push(`transformOutput ${step ? step.name : "function"} ${JSON.stringify(result.data ?? null)}`);
              if (step?.name === "b") return { result: { data: (result.data as number) * 10 } };
              return step ? undefined : { result: { data: { wrapped: result.data } } };
            },
            finished: ({ result }) => void lines.push(`finished ${JSON.stringify(result)}`),
            beforeResponse: () => void lines.push("beforeResponse"),
          };
        },
      };
    },
  });
}

describe("v3 InngestMiddleware in a run", () => {
  it("runs its hooks in v3's documented order, per request, and changes the input and outputs", async () => {
    const lines: string[] = [];
    const app = new Stepflare({ id: "v3-app", middleware: [lifecycle(lines)] });
    let seenGreeting: string | undefined;
    const fn = app.createFunction({ id: "v3-fn" }, { event: "test/event" }, async ({ step, greeting }) => {
      expectTypeOf(greeting).toEqualTypeOf<"hello">();
      seenGreeting = greeting;
      const a = await step.run("a", () => 1);
      await step.sleep("nap", "1m");
      const b = await step.run("b", () => a + 1);
      return { a, b };
    });
    const run = new TestRun(fn.handler, { middleware: fn.middlewareSetup() });
    expect(await run.drive()).toEqual({ type: "completed", output: { wrapped: { a: 1, b: 20 } } });
    expect(seenGreeting).toBe("hello");
    // The step's output as transformOutput changed it is what is stored.
    expect(run.step("b")).toMatchObject({ status: "completed", output: 20 });
    expect(lines).toEqual([
      "init fn=none",
      // First request: nothing stored, so memoization ends at once; a runs, the sleep ends the request.
      "onFunctionRun v3-fn test/event",
      "transformInput steps=0",
      "beforeMemoization",
      "afterMemoization",
      "beforeExecution",
      "transformOutput a 1",
      "afterExecution",
      "beforeResponse",
      // Second request: a and the sleep replayed (a's is the one stored result), then b runs and the function returns.
      "onFunctionRun v3-fn test/event",
      "transformInput steps=1",
      "beforeMemoization",
      "afterMemoization",
      "beforeExecution",
      "transformOutput b 2",
      "afterExecution",
      'transformOutput function {"a":1,"b":20}',
      'finished {"data":{"wrapped":{"a":1,"b":20}}}',
      "beforeResponse",
    ]);
  });

  it("sees a step's error and the function's, and may replace them", async () => {
    const lines: string[] = [];
    const replacing = new InngestMiddleware({
      name: "replacing",
      init: () => ({
        onFunctionRun: () => ({
          transformOutput({ result, step }) {
            if (result.error === undefined) return;
            lines.push(`${step ? step.name : "function"}: ${(result.error as Error).message}`);
            return { result: { error: new Error(`wrapped: ${(result.error as Error).message}`) } };
          },
          finished: ({ result }) => void lines.push(`finished ${(result.error as Error).message}`),
        }),
      }),
    });
    const app = new Stepflare({ id: "v3-app" });
    const fn = app.createFunction({ id: "v3-errors", retries: 0, middleware: [replacing] }, { event: "test/event" }, async ({ step }) => {
      await step.run("boom", () => {
        throw new Error("step broke");
      });
    });
    const run = new TestRun(fn.handler, { middleware: fn.middlewareSetup(), retries: 0 });
    // The function's error is the one transformOutput gave back.
    expect(await run.drive()).toMatchObject({ type: "failed", error: { name: "Error", message: "wrapped: wrapped: step broke" } });
    expect(run.step("boom")?.error).toMatchObject({ message: "wrapped: step broke" });
    expect(lines).toEqual(["boom: step broke", "function: wrapped: step broke", "finished wrapped: wrapped: step broke"]);
  });

  it("is given the function when given to a function, and runs beside v4 classes (v4's first, as listed)", async () => {
    const lines: string[] = [];
    class V4 extends Middleware.BaseMiddleware {
      readonly id = "v4";
      override transformFunctionInput(arg: Middleware.TransformFunctionInputArgs) {
        lines.push("v4 transformFunctionInput");
        return { ...arg, ctx: { ...arg.ctx, fromV4: 4 } };
      }
    }
    const app = new Stepflare({ id: "v3-app", middleware: [V4] });
    const fn = app.createFunction({ id: "mixed", middleware: [lifecycle(lines)] }, { event: "test/event" }, async ({ fromV4, greeting }) => {
      expectTypeOf(fromV4).toEqualTypeOf<number>();
      return `${greeting} ${fromV4}`;
    });
    const run = new TestRun(fn.handler, { middleware: fn.middlewareSetup() });
    expect(await run.drive()).toEqual({ type: "completed", output: { wrapped: "hello 4" } });
    expect(lines.slice(0, 3)).toEqual(["v4 transformFunctionInput", "init fn=mixed", "onFunctionRun mixed test/event"]);
  });
});

describe("v3 InngestMiddleware on send", () => {
  it("calls onSendEvent per send: transformInput changes the payloads, transformOutput the result", async () => {
    let onSendEvents = 0;
    const stamping = new InngestMiddleware({
      name: "stamping",
      init: () => ({
        onSendEvent() {
          onSendEvents++;
          return {
            transformInput: ({ payloads }) => ({ payloads: payloads.map((p) => ({ ...p, data: { ...p.data, stamped: true } })) }),
            transformOutput: ({ result }) => ({ result: { ...result, sentBy: "stamping" } }),
          };
        },
      }),
    });
    const app = new Stepflare({ id: "v3-app", middleware: [stamping] });
    const sent: EventPayload[] = [];
    app.useSender(async (events) => {
      sent.push(...events);
      return { ids: events.map((_, i) => `id-${i}`) };
    });
    expect(await app.send({ name: "test/one", data: { n: 1 } })).toEqual({ ids: ["id-0"], sentBy: "stamping" });
    await app.send([{ name: "test/two", data: {} }]);
    expect(sent.map((e) => e.data)).toEqual([{ n: 1, stamped: true }, { stamped: true }]);
    expect(onSendEvents).toBe(2);
  });

  it("refuses an entry that is neither a class nor an InngestMiddleware", () => {
    expect(() => new Stepflare({ id: "x", middleware: [{} as never] })).toThrow(/InngestMiddleware/);
    expect(() => new InngestMiddleware({ name: "no-init" } as never)).toThrow(/init must be a function/);
  });
});
