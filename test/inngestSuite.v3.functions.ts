// Inngest v3 code using EventSchemas and InngestMiddleware, as v3's docs write it, with the import
// changed. The installed inngest package is v4, which has neither, so this file type-checks against
// this SDK only (tsc); test/inngestSuite.test.ts runs it in the Worker.
import { z } from "zod";
import { EventSchemas, Inngest, InngestMiddleware } from "../sdk/index.ts";

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
