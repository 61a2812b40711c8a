// Inngest v4's typed events (docs/coming-from-inngest.md): an event type with a schema, used as a trigger.
import { z } from "zod";
import { eventType, type Stepflare } from "../sdk/index.ts";

/**
 * `shop/payment.received` carries an order id and a total that may not be negative. Because a function of
 * this Worker declares it as a trigger, every way the event comes in is checked against the schema: under
 * `npm run dev`, `POST /e/dev` with `"total": -1` answers a 400 naming `data.total`, and stores nothing.
 */
export const paymentReceived = eventType("shop/payment.received", { schema: z.object({ orderId: z.string(), total: z.number().min(0) }) });

export function typedExamples(app: Stepflare) {
  const receipt = app.createFunction({ id: "receipt", triggers: [paymentReceived] }, async ({ event, step }) => {
    // event.data is typed by the schema: total is a number.
    return step.run("email-receipt", () => ({ orderId: event.data.orderId, total: event.data.total.toFixed(2) }));
  });
  return [receipt];
}
