// Functions of Inngest's own integration suite (inngest-js, packages/inngest/src/test/functions/),
// written as that suite writes them with only the import changed, and v3 functions using
// EventSchemas and InngestMiddleware. test/inngestSuite.test.ts runs them in the Worker;
// sdk/inngestSuite.test.ts runs the same handlers in memory with a fake clock (Inngest's retries: 1).
import { z } from "zod";
import { EventSchemas, Inngest, InngestMiddleware, referenceFunction } from "../sdk/index.ts";

/** handling-step-errors/index.ts; `retries` is Inngest's 1 unless a test needs it otherwise. */
export function handlingStepErrors(inngest: Inngest, { id = "handling-step-errors", retries = 1 } = {}) {
  return inngest.createFunction(
    {
      id,
      retries,
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

// v3: a client with EventSchemas and an InngestMiddleware, as v3's docs write them.

export const v3Schemas = new EventSchemas()
  .fromRecord<{ "demo/v3.greeted": { data: { who: string } } }>()
  .fromZod({ "demo/v3.order.placed": { data: z.object({ orderId: z.string(), total: z.number().min(0) }) } });

/** Adds `currency` to every run's context and wraps the function's output, as v3's middleware docs show. */
export const v3Currency = new InngestMiddleware({
  name: "currency",
  init() {
    return {
      onFunctionRun() {
        return {
          transformInput() {
            return { ctx: { currency: "EUR" as const } };
          },
          transformOutput({ result, step }) {
            if (step || result.error !== undefined) return;
            return { result: { data: { receipt: result.data } } };
          },
        };
      },
    };
  },
});

export const v3App = new Inngest({ id: "test-v3", schemas: v3Schemas, middleware: [v3Currency] });

export const v3OrderReceipt = v3App.createFunction({ id: "v3-order-receipt" }, { event: "demo/v3.order.placed" }, async ({ event, step, currency }) => {
  // Typed by the zod schema and the middleware: a number and "EUR", no casts.
  const total: number = event.data.total;
  const unit: "EUR" = currency;
  return step.run("format", () => `${event.data.orderId}: ${total.toFixed(2)} ${unit}`);
});
