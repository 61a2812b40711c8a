import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { FunctionReference, referenceFunction } from "./reference.ts";
import type { StepTools } from "./step.ts";
import { TestRun } from "./testing.ts";

describe("referenceFunction", () => {
  it("is invoked as the function with that id, data and all, and returns the child's output", async () => {
    const resize = referenceFunction({ functionId: "resize-image", appId: "media" });
    const run = new TestRun(async ({ step }) => step.invoke("resize", { function: resize, data: { url: "a.png" } }));
    expect(await run.invoke()).toMatchObject({ type: "suspended" });
    expect(run.step("resize")?.request).toMatchObject({ type: "invoke", functionId: "resize-image", data: { url: "a.png" } });
    run.resolveInvoke("resize", { output: { width: 100 } });
    expect(await run.invoke()).toEqual({ type: "completed", output: { width: 100 } });
  });

  it("keeps Inngest's shape: opts and its tag", () => {
    const ref = referenceFunction({ functionId: "a", appId: "b" });
    expect(ref).toBeInstanceOf(FunctionReference);
    expect(ref.opts).toEqual({ functionId: "a", appId: "b" });
    expect(Object.prototype.toString.call(ref)).toBe("[object Inngest.FunctionReference]");
    expect(() => referenceFunction({ functionId: "" })).toThrow(/functionId/);
  });

  it("types step.invoke's data and result from its schemas", () => {
    const resize = referenceFunction({ functionId: "resize", schemas: { data: z.object({ url: z.string() }), return: z.object({ width: z.number() }) } });
    const untyped = referenceFunction({ functionId: "anything" });
    type Invoke = StepTools["invoke"];
    expectTypeOf<ReturnType<typeof call>>().toEqualTypeOf<Promise<{ width: number }>>();
    expectTypeOf<ReturnType<typeof callUntyped>>().toEqualTypeOf<Promise<unknown>>();
    function call(invoke: Invoke) {
      return invoke("r", { function: resize, data: { url: "a" } });
    }
    function callUntyped(invoke: Invoke) {
      return invoke("r", { function: untyped, data: { anything: 1 } });
    }
    // @ts-expect-error data must fit the schema
    const wrong = (invoke: Invoke) => invoke("r", { function: resize, data: { url: 1 } });
    expect(typeof wrong).toBe("function");
  });
});
