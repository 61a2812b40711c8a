/**
 * An Inngest app as its users write it today: the official `inngest` SDK, served by `inngest/hono`
 * from a Cloudflare Worker, nothing in it about Stepflare except where it points (INNGEST_BASE_URL
 * in wrangler.toml). Synced with `POST /v1/apps { "url": "http://…/api/inngest" }`, its functions
 * run on Stepflare's RunObjects; each step body runs here, called over the SDK's wire protocol.
 */
import { Hono } from "hono";
import { Inngest } from "inngest";
import { serve } from "inngest/hono";

// Dev mode: nothing is signed, as with Inngest's Dev Server (Stepflare in dev mode, `npm run dev`).
const inngest = new Inngest({ id: "hono-app", isDev: true });

/** An order's way through: load it, a cool-off, then stock and payment at once (a parallel group). */
const fulfilOrder = inngest.createFunction({ id: "fulfil-order", triggers: [{ event: "store/order.placed" }] }, async ({ event, step }) => {
  const order = await step.run("load-order", () => ({ id: String(event.data.orderId), items: Number(event.data.items) }));
  await step.sleep("cool-off", "1s");
  const [stock, payment] = await Promise.all([
    step.run("reserve-stock", () => ({ reserved: order.items })),
    step.run("charge-card", () => ({ charged: order.items * 10 })),
  ]);
  return { orderId: order.id, ...stock, ...payment };
});

/** Asks for a receipt with step.sendEvent; `send-receipt` is started by that event. */
const requestReceipt = inngest.createFunction({ id: "request-receipt", triggers: [{ event: "store/order.paid" }] }, async ({ event, step }) => {
  const { ids } = await step.sendEvent("ask-for-receipt", { name: "store/receipt.requested", data: { orderId: event.data.orderId } });
  return { receiptEventId: ids[0] };
});

const sendReceipt = inngest.createFunction({ id: "send-receipt", triggers: [{ event: "store/receipt.requested" }] }, async ({ event, step }) => {
  return step.run("render", () => `receipt for order ${event.data.orderId}`);
});

/** A cron function: Stepflare's cron tick starts it (or the dashboard's "Run now"). */
const nightlyReport = inngest.createFunction({ id: "nightly-report", triggers: [{ cron: "0 3 * * *" }] }, async ({ event, step }) => {
  return step.run("summarise", () => ({ report: "nightly", trigger: event.name }));
});

const app = new Hono();

// GET: introspection; PUT: a sync (Stepflare's POST /v1/apps sends it); POST: a call to run a step.
app.on(["GET", "PUT", "POST"], "/api/inngest", serve({ client: inngest, functions: [fulfilOrder, requestReceipt, sendReceipt, nightlyReport] }));

export default app;
