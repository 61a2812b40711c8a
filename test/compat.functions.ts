// Functions of the Inngest v4 source-compatibility tests (test/compat.test.ts), written in v4's form.
import { z } from "zod";
import { cron, eventType, type Stepflare } from "../sdk/index.ts";

export const orderPlaced = eventType("test/compat.order-placed", { schema: z.object({ orderId: z.string(), total: z.number().min(0) }) });

export function compatFunctions(app: Stepflare) {
  const receipt = app.createFunction({ id: "compat-receipt", retries: 1, triggers: [orderPlaced] }, async ({ event, step }) => {
    // Typed by the schema: a number, no cast.
    const total: number = event.data.total;
    return step.run("receipt", () => `${event.data.orderId}:${total.toFixed(2)}`);
  });
  const nightly = app.createFunction({ id: "compat-nightly", triggers: [cron("TZ=Europe/Paris 0 3 * * *"), { event: "test/compat.nightly-now" }] }, async ({ step }) =>
    step.run("sweep", () => "swept"),
  );
  // step.fetch to the echo host (test/outbound.ts), a sleep, then the memoized response read again.
  const fetches = app.createFunction({ id: "compat-fetch", triggers: [{ event: "test/compat.fetch" }] }, async ({ event, step }) => {
    const res = await step.fetch(`http://echo.stepflare.test/${event.data.key}`, { method: "POST", body: "ping" });
    await step.sleep("nap", 50);
    return { status: res.status, statusText: res.statusText, echo: res.headers.get("x-echo"), body: await res.json() };
  });
  return [receipt, nightly, fetches];
}
