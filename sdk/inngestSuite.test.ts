// Inngest's own scenarios (inngest-js, packages/inngest/src/test/functions/) in memory, as Inngest
// writes them (retries: 1 included), with a fake clock over the retries' backoff. The Worker runs
// them in test/inngestSuite.test.ts; the real `inngest` package serves them in worker/remote/inngestSuite.test.ts.
import { describe, expect, it } from "vitest";
import { expectHandlingStepErrors } from "../test/inngestSuite.expect.ts";
import { handlingStepErrors } from "../test/inngestSuite.functions.ts";
import { Stepflare } from "./client.ts";
import { FakeClock, TestRun } from "./testing.ts";

describe("handling-step-errors", () => {
  it("fails a and d twice each (retries: 1), gives the handler each StepError with its message and cause, and completes", async () => {
    const fn = handlingStepErrors(new Stepflare({ id: "suite" }));
    const run = new TestRun(fn.handler, { retries: fn.retries, clock: new FakeClock(Date.UTC(2026, 0, 1)) });
    expect(await run.drive()).toEqual({ type: "completed", output: null });

    expectHandlingStepErrors((name) => run.step(name));
  });
});
