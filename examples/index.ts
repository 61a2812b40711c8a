import { NonRetriableError, Stepflare } from "../sdk/index.ts";
import { serve } from "../worker/index.ts";
import { coordinationExamples } from "./coordination.ts";
import { dashboardTour } from "./dashboard.ts";
import { flowExamples } from "./flow.ts";
import { liveExamples } from "./live.ts";
import { remoteExamples } from "./remote.ts";
import { tracingExamples } from "./tracing.ts";
import { typedExamples } from "./typed.ts";

export * from "../worker/index.ts";

const app = new Stepflare({ id: "examples" });

/** The smallest function: one step. */
const hello = app.createFunction({ id: "hello" }, { event: "demo/hello" }, async ({ event, step }) => {
  const greeting = await step.run("greet", () => `Hello, ${event.data.name ?? "world"}!`);
  return { greeting };
});

/** Steps, a sleep and a follow-up event: the shape of most real functions. */
const importProduct = app.createFunction(
  { id: "import-product-images", retries: 3 },
  { event: "shop/product.imported" },
  async ({ event, step, logger }) => {
    const urls = await step.run("copy-images", () => (event.data.imageURLs as string[] | undefined ?? []).map((url) => `${url}?copied`));
    await step.sleep("wait", "1s");
    const sizes = await Promise.all(urls.map((url, i) => step.run("resize", () => ({ url, width: 100 * (i + 1) }))));
    await step.sendEvent("announce", { name: "shop/product.ready", data: { productId: event.data.productId } });
    logger.info("product imported", { images: sizes.length });
    return { sizes };
  },
);

/** Triggered by every `shop/*` event whose data says it is urgent (a CEL `if`). */
const urgentShopEvents = app.createFunction(
  { id: "urgent-shop-events" },
  { event: "shop/*", if: "has(event.data.urgent) && event.data.urgent == true" },
  async ({ event }) => ({ handled: event.name }),
);

/** Fails for good, and its onFailure handler runs as a run of its own. */
const chargeCard = app.createFunction(
  {
    id: "charge-card",
    retries: 0,
    onFailure: async ({ event, error, step }) => {
      await step.run("notify-support", () => ({ failedRun: event.data.run_id, reason: error.message }));
    },
  },
  { event: "billing/charge.requested" },
  async ({ step }) => {
    await step.run("charge", () => {
      throw new NonRetriableError("card declined");
    });
  },
);

/**
 * A weekly report, Mondays at 09:00 in Paris (daylight-saving time included), that can also be asked
 * for at any time with a `report/requested` event. The scheduled run's event is Inngest's
 * `inngest/scheduled.timer`, with the cron in `data.cron`.
 */
const weeklyReport = app.createFunction(
  { id: "weekly-report" },
  [{ cron: "TZ=Europe/Paris 0 9 * * 1" }, { event: "report/requested" }],
  async ({ event, step }) => {
    const totals = await step.run("sum-orders", () => ({ orders: 42, revenue: 1234.5 }));
    await step.sendEvent("publish", { name: "report/ready", data: { ...totals, trigger: event.name } });
    return totals;
  },
);

export default serve({ client: app, functions: [hello, importProduct, urgentShopEvents, chargeCard, weeklyReport, ...coordinationExamples(app), ...flowExamples(app), ...liveExamples(app), ...dashboardTour(app), ...remoteExamples(app), ...typedExamples(app), ...tracingExamples(app)] });
