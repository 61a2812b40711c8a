// Inngest's "handling step errors" scenario on the wire: the function as inngest-js's suite writes
// it (packages/inngest/src/test/functions/handling-step-errors), served by the real `inngest`
// package and run by the remote executor (testApp.ts), with a fake clock over the backoff. The
// error's cause goes to the executor and comes back in the memo, so the SDK's StepError has it.
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../sdk/testing.ts";
import { testApp } from "./testApp.ts";

describe("handling-step-errors, served by the inngest SDK", () => {
  it.each([false, true])("keeps the cause through the memo: the handler reads err.cause.message and the run completes (checkpointing %s)", async (checkpointing) => {
    const app = await testApp((inngest) => [
      inngest.createFunction(
        {
          id: "handling-step-errors",
          retries: 1,
          checkpointing,
          triggers: [{ event: "demo/handling.step.errors" }],
        },
        async ({ step }) => {
          try {
            await step.run("a", () => {
              throw new Error("Oh no!", {
                cause: new Error("This is the cause"),
              });
            });
          } catch (err) {
            await step.run("b", () => {
              return `err was: "${(err as Error).message}" and the cause was: "${((err as Error).cause as Error).message}"`;
            });
          }

          await Promise.all([
            step.run("c succeeds", () => "c succeeds"),
            step
              .run("d fails", () => {
                throw new Error("D failed!");
              })
              .catch((err: Error) => {
                return step.run("e succeeds", () => {
                  return {
                    errMessage: err.message,
                  };
                });
              }),
          ]);
        },
      ),
    ]);
    const run = app.run("handling-step-errors", { retries: 1, checkpointing, clock: new FakeClock(Date.UTC(2026, 0, 1)) });
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
    expect(run.step("d fails")?.error).toMatchObject({ name: "Error", message: "D failed!", stack: expect.any(String) });
    // ran "e succeeds" step
    expect(run.step("e succeeds")).toMatchObject({ status: "completed", output: { errMessage: "D failed!" } });
  });
});
