// The dashboard tour (docs/dashboard.md): runs worth looking at, one that sleeps and one that fails
// for a while, so each part of a run's page has something to show under `npm run dev`.
import { RetryAfterError, type Stepflare } from "../sdk/index.ts";

export function dashboardTour(app: Stepflare) {
  /** Plans, sleeps as long as its event says (an hour by default), then wakes: a run to watch, and to cancel. */
  const nap = app.createFunction({ id: "tour-nap", name: "Tour: take a nap" }, { event: "tour/nap.requested" }, async ({ event, step }) => {
    const plan = await step.run("plan", () => ({ sleepFor: typeof event.data.sleepFor === "string" ? event.data.sleepFor : "1h" }));
    await step.sleep("nap", plan.sleepFor);
    return step.run("wake-up", () => ({ rested: plan.sleepFor }));
  });

  /**
   * Charges an order through a payment service that is down until `data.downUntil` (epoch ms): each
   * attempt before then fails and is retried a second later, so a run started early fails after three
   * attempts, and a rerun once the service is back completes.
   */
  const checkout = app.createFunction({ id: "tour-checkout", name: "Tour: checkout", retries: 2 }, { event: "tour/checkout.requested" }, async ({ event, step }) => {
    const order = await step.run("load-order", () => ({ orderId: String(event.data.orderId ?? "o-1"), total: 42 }));
    const downUntil = Number(event.data.downUntil ?? 0);
    const receipt = await step.run("charge", () => {
      if (Date.now() < downUntil) throw new RetryAfterError(`payment service unavailable until ${new Date(downUntil).toISOString()}`, "1s");
      return { orderId: order.orderId, charged: order.total };
    });
    await step.run("email-receipt", () => ({ sent: true, orderId: receipt.orderId }));
    return receipt;
  });

  return [nap, checkout];
}
