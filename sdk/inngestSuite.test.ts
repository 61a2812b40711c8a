// Inngest's own scenarios (inngest-js, packages/inngest/src/test/functions/) in memory, as Inngest
// writes them (retries: 1 included), with a fake clock over the retries' backoff. The Worker runs
// them in test/inngestSuite.test.ts; the real `inngest` package serves them in worker/remote/inngestSuite.test.ts.
import { describe, expect, it } from "vitest";
import { handlingStepErrors } from "../test/inngestSuite.functions.ts";
import { Stepflare } from "./client.ts";
import { FakeClock, TestRun } from "./testing.ts";

describe("handling-step-errors", () => {
  it("fails a and d twice each (retries: 1), gives the handler each StepError with its message and cause, and completes", async () => {
    const fn = handlingStepErrors(new Stepflare({ id: "suite" }));
    const run = new TestRun(fn.handler, { retries: fn.retries, clock: new FakeClock(Date.UTC(2026, 0, 1)) });
    expect(await run.drive()).toEqual({ type: "completed", output: null });

    // ran "a" step and it failed, twice
    expect(run.step("a")).toMatchObject({ status: "failed", attempts: 2 });
    expect(run.step("a")?.error).toEqual({
      name: "Error",
      message: "Oh no!",
      stack: expect.any(String),
      cause: expect.objectContaining({ name: "Error", message: "This is the cause" }),
    });
    // ran "b" step
    expect(run.step("b")).toMatchObject({ status: "completed", output: `err was: "Oh no!" and the cause was: "This is the cause"` });
    // ran "c succeeds" step
    expect(run.step("c succeeds")).toMatchObject({ status: "completed", output: "c succeeds" });
    // ran "d fails" step and it failed, twice
    expect(run.step("d fails")).toMatchObject({ status: "failed", attempts: 2 });
    expect(run.step("d fails")?.error).toEqual({ name: "Error", message: "D failed!", stack: expect.any(String) });
    // ran "e succeeds" step
    expect(run.step("e succeeds")).toMatchObject({ status: "completed", output: { errMessage: "D failed!" } });
  });
});
