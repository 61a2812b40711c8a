// What Inngest's own tests assert of its scenarios' steps, for the runs of them that expose their
// stored steps (in memory: sdk/inngestSuite.test.ts; over the wire: worker/remote/inngestSuite.test.ts).
import { expect } from "vitest";
import type { StepRecord } from "../sdk/driver.ts";

/** handling-step-errors/index.test.ts, with `retries: 1`: a and d failed twice, the handler saw each error with its message (and a's cause), and completed. */
export function expectHandlingStepErrors(step: (name: string) => StepRecord | undefined): void {
  // ran "a" step and it failed, twice
  expect(step("a")).toMatchObject({ status: "failed", attempts: 2 });
  expect(step("a")?.error).toEqual({
    name: "Error",
    message: "Oh no!",
    stack: expect.any(String),
    cause: expect.objectContaining({ name: "Error", message: "This is the cause" }),
  });
  // ran "b" step
  expect(step("b")).toMatchObject({ status: "completed", output: `err was: "Oh no!" and the cause was: "This is the cause"` });
  // ran "c succeeds" step
  expect(step("c succeeds")).toMatchObject({ status: "completed", output: "c succeeds" });
  // ran "d fails" step and it failed, twice
  expect(step("d fails")).toMatchObject({ status: "failed", attempts: 2 });
  expect(step("d fails")?.error).toMatchObject({ name: "Error", message: "D failed!", stack: expect.any(String) });
  // ran "e succeeds" step
  expect(step("e succeeds")).toMatchObject({ status: "completed", output: { errMessage: "D failed!" } });
}
