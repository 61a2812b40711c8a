// Functions of Inngest's own integration suite (inngest-js, packages/inngest/src/test/functions/),
// written as that suite writes them with only the import changed: sdk/inngestSource.test.ts
// type-checks this file against the real inngest package with the import swapped back.
// test/inngestSuite.test.ts runs them in the Worker; sdk/inngestSuite.test.ts in memory with a
// fake clock (Inngest's retries: 1).
import { Inngest, referenceFunction } from "../sdk/index.ts";

/** What the suite's handlers use of a step tool, so one handler serves this SDK's client and the real `inngest` one alike. */
interface SuiteStep {
  run(id: string, fn: () => unknown): Promise<unknown>;
}

/** handling-step-errors/index.ts's handler (worker/remote and test/e2e serve it on the real `inngest` package too). */
export async function handlingStepErrorsHandler({ step }: { step: SuiteStep }) {
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
}

/** handling-step-errors/index.ts; `retries` is Inngest's 1 unless a test needs it otherwise. */
export function handlingStepErrors(inngest: Inngest, { retries = 1 }: { retries?: 0 | 1 } = {}) {
  return inngest.createFunction(
    {
      id: "handling-step-errors",
      retries,
      triggers: [{ event: "demo/handling.step.errors" }],
    },
    handlingStepErrorsHandler,
  );
}

/** step-invoke-not-found/index.ts. */
export function stepInvokeNotFound(inngest: Inngest) {
  return inngest.createFunction(
    {
      id: "step-invoke-not-found",
      triggers: [{ event: "demo/step.invoke.not-found" }],
    },
    async ({ step }) => {
      await step.invoke("invoke-non-existent-fn", {
        function: referenceFunction({ functionId: "non-existant-fn" }),
      });
    },
  );
}
