// Functions written the way Inngest v4's docs write them. The code was written against
// `from "inngest"`; only the import of the SDK differs (sdk/inngestSource.test.ts type-checks this
// very file against the inngest package with the import swapped back).
import { env } from "cloudflare:workers";
import { z } from "zod";
import { cron, dependencyInjectionMiddleware, eventType, experiment, Inngest, Middleware, NonRetriableError, referenceFunction } from "../sdk/index.ts";

/** Records that `key` happened, as a logging backend would (the tests count the rows). */
async function record(key: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(key).run();
}

// A logging middleware: one line per step actually run, however often the handler replays.
class StepLogger extends Middleware.BaseMiddleware {
  readonly id = "step-logger";
  override async onStepStart({ ctx, stepInfo }: Middleware.OnStepStartArgs) {
    await record(`${ctx.runId}:started:${stepInfo.options.id}`);
  }
}

// Stamps every event the app sends.
class EventStamp extends Middleware.BaseMiddleware {
  readonly id = "event-stamp";
  override transformSendEvent(arg: Middleware.TransformSendEventArgs) {
    return { ...arg, events: arg.events.map((event) => ({ ...event, data: { ...event.data, sentBy: "v4docs-app" } })) };
  }
}

export const inngest = new Inngest({
  id: "v4docs-app",
  middleware: [StepLogger, EventStamp, dependencyInjectionMiddleware({ pricing: { taxRate: 0.2 } })],
});

export const orderPlaced = eventType("v4docs/order.placed", {
  schema: z.object({ orderId: z.string(), items: z.array(z.object({ sku: z.string(), price: z.number().min(0) })).min(1) }),
});

export const paymentConfirmed = eventType("v4docs/payment.confirmed", { schema: z.object({ orderId: z.string() }) });

export const computeTotal = inngest.createFunction(
  { id: "v4docs-compute-total", triggers: [{ event: "v4docs/compute.total" }] },
  async ({ event, step, pricing }) => {
    const items = event.data.items as { price: number }[];
    return step.run("sum", () => {
      const net = items.reduce((sum, item) => sum + item.price, 0);
      return { net, gross: Math.round(net * (1 + pricing.taxRate) * 100) / 100 };
    });
  },
);

const computeTotalRef = referenceFunction({
  functionId: "v4docs-compute-total",
  schemas: { data: z.object({ items: z.array(z.object({ price: z.number() })) }), return: z.object({ net: z.number(), gross: z.number() }) },
});

export const processOrder = inngest.createFunction(
  {
    id: "v4docs-process-order",
    retries: 3,
    concurrency: { limit: 5, key: "event.data.orderId" },
    throttle: { limit: 100, period: "1m" },
    triggers: [orderPlaced],
  },
  async ({ event, step }) => {
    const reserved = await step.run("reserve-stock", () => event.data.items.map((item) => item.sku));
    const total = await step.invoke("compute-total", { function: computeTotalRef, data: { items: event.data.items } });
    await step.sleep("cool-off", "1s");
    const payment = await step.waitForEvent("wait-for-payment", {
      event: paymentConfirmed,
      timeout: "1h",
      if: "async.data.orderId == event.data.orderId",
    });
    if (!payment) return { status: "expired", reserved };
    const { ids } = await step.sendEvent("order-confirmed", { name: "v4docs/order.confirmed", data: { orderId: event.data.orderId, gross: total.gross } });
    return { status: "confirmed", reserved, total, confirmation: ids[0] };
  },
);

export const nightlyReport = inngest.createFunction({ id: "v4docs-nightly-report", triggers: [cron("TZ=America/New_York 0 2 * * *")] }, async ({ step }) => {
  return step.run("build-report", () => ({ built: true }));
});

export const importUser = inngest.createFunction({ id: "v4docs-import-user", retries: 3, triggers: [{ event: "v4docs/user.import" }] }, async ({ event, step }) => {
  return step.run("validate", () => {
    if (!String(event.data.email).includes("@")) throw new NonRetriableError("the email address is invalid; importing again will not fix it");
    return { imported: event.data.email };
  });
});

export const fastestQuote = inngest.createFunction({ id: "v4docs-fastest-quote", triggers: [{ event: "v4docs/quote.requested" }] }, async ({ step, group }) => {
  const winner = await group.parallel({ mode: "race" }, () =>
    Promise.race([
      step.run("carrier-a", async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return "carrier-a";
      }),
      step.run("carrier-b", () => "carrier-b"),
    ]),
  );
  const { result, variant } = await group.experiment("pricing-page", {
    variants: {
      classic: () => step.run("classic-price", () => 10),
      discounted: () => step.run("discounted-price", () => 8),
    },
    select: experiment.weighted({ classic: 50, discounted: 50 }),
  });
  return { winner, variant, price: result };
});

export const exchangeRates = inngest.createFunction({ id: "v4docs-exchange-rates", triggers: [{ event: "v4docs/rates.refresh" }] }, async ({ event, step }) => {
  const response = await step.fetch(`http://echo.stepflare.test/rates/${event.data.key}`, { method: "POST", body: JSON.stringify({ base: "EUR" }) });
  const echoed = (await response.json()) as { body: string; hits: number };
  await step.sleep("settle", "1s");
  return { status: response.status, sent: JSON.parse(echoed.body), hits: echoed.hits };
});

export const functions = [computeTotal, processOrder, nightlyReport, importUser, fastestQuote, exchangeRates];
