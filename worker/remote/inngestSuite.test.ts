// Inngest's "handling step errors" scenario on the wire: the handler as inngest-js's suite writes
// it (test/inngestSuite.functions.ts), served by the real `inngest`
// package and run by the remote executor (testApp.ts), with a fake clock over the backoff. The
// error's cause goes to the executor and comes back in the memo, so the SDK's StepError has it.
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../sdk/testing.ts";
import { expectHandlingStepErrors } from "../../test/inngestSuite.expect.ts";
import { handlingStepErrorsHandler } from "../../test/inngestSuite.functions.ts";
import { testApp } from "./testApp.ts";

describe("handling-step-errors, served by the inngest SDK", () => {
  it.each([false, true])("keeps the cause through the memo: the handler reads err.cause.message and the run completes (checkpointing %s)", async (checkpointing) => {
    const app = await testApp((inngest) => [
      inngest.createFunction({ id: "handling-step-errors", retries: 1, checkpointing, triggers: [{ event: "demo/handling.step.errors" }] }, handlingStepErrorsHandler),
    ]);
    const run = app.run("handling-step-errors", { retries: 1, checkpointing, clock: new FakeClock(Date.UTC(2026, 0, 1)) });
    expect(await run.drive()).toEqual({ type: "completed", output: null });
    expectHandlingStepErrors((name) => run.step(name));
  });
});
