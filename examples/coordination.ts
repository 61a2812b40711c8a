// Functions that coordinate with events and with each other (docs/coordination.md): the kinds of
// function Inngest's docs show, each runnable under `npm run dev`.
import type { Stepflare } from "../sdk/index.ts";

export function coordinationExamples(app: Stepflare) {
  /**
   * Onboarding: after a signup, wait up to 3 days for the user to activate (matched on the user
   * id), then welcome them or nudge them.
   */
  const onboarding = app.createFunction({ id: "onboarding" }, { event: "app/user.signup" }, async ({ event, step }) => {
    await step.run("send-welcome-email", () => ({ to: event.data.email }));
    const activated = await step.waitForEvent("wait-for-activation", { event: "app/user.activated", match: "data.userId", timeout: "3d" });
    if (!activated) return step.run("send-nudge-email", () => ({ to: event.data.email, nudged: true }));
    return step.run("send-tips-email", () => ({ to: event.data.email, plan: activated.data.plan ?? "free" }));
  });

  /** A function other functions invoke: it prices an order. */
  const priceOrder = app.createFunction({ id: "price-order" }, { event: "shop/order.price-requested" }, async ({ event, step }) => {
    const items = (event.data.items ?? []) as { price: number; quantity: number }[];
    return step.run("sum", () => ({ total: items.reduce((sum, item) => sum + item.price * item.quantity, 0) }));
  });

  /** Checkout invokes price-order and waits for its result, as one call. */
  const checkout = app.createFunction({ id: "checkout" }, { event: "shop/checkout.started" }, async ({ event, step }) => {
    const { total } = await step.invoke<{ total: number }>("price", { function: priceOrder, data: { items: event.data.items }, timeout: "1m" });
    return step.run("charge", () => ({ orderId: event.data.orderId, charged: total }));
  });

  /**
   * A trial drip campaign, cancelled as soon as the user upgrades (cancelOn, matched on the user id),
   * with an onCancel handler that records why.
   */
  const trialDrip = app.createFunction(
    {
      id: "trial-drip",
      cancelOn: [{ event: "app/user.upgraded", match: "data.userId" }],
      onCancel: async ({ event, reason, step }) => {
        await step.run("log-cancel", () => ({ userId: event.data.event.data.userId, reason: reason.type }));
      },
    },
    { event: "app/trial.started" },
    async ({ event, step }) => {
      for (const day of [1, 3, 7]) {
        await step.sleep(`until-day-${day}`, `${day}d`);
        await step.run(`email-day-${day}`, () => ({ to: event.data.userId, day }));
      }
    },
  );

  /**
   * A delayed function: send `app/reminder.scheduled` with a `ts` in the future and its run starts
   * then (it stays Queued until), however far ahead; `timeouts.start` drops it if it starts over
   * an hour late (the Worker was down).
   */
  const reminder = app.createFunction({ id: "reminder", timeouts: { start: "1h" } }, { event: "app/reminder.scheduled" }, async ({ event, step }) =>
    step.run("remind", () => ({ message: event.data.message, sentAt: new Date().toISOString() })),
  );

  return [onboarding, priceOrder, checkout, trialDrip, reminder];
}
