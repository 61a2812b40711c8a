// Flow control (docs/flow-control.md): each option on a function of its own, runnable under `npm run dev`.
import type { Stepflare } from "../sdk/index.ts";

export function flowExamples(app: Stepflare) {
  /** At most 5 imports at once overall, and 1 per shop; a shop's "priority" plan jumps the queue by a minute. */
  const importProducts = app.createFunction(
    { id: "import-products", concurrency: [{ limit: 5 }, { limit: 1, key: "event.data.shopId" }], priority: { run: "event.data.plan == 'priority' ? 60 : 0" } },
    { event: "shop/import.requested" },
    async ({ event, step }) => step.run("import", () => ({ shopId: event.data.shopId, imported: true })),
  );

  /** A third-party API that takes 10 calls a minute per account: later runs wait their turn. */
  const syncCrm = app.createFunction(
    { id: "sync-crm", throttle: { limit: 10, period: "1m", key: "event.data.accountId" } },
    { event: "crm/contact.updated" },
    async ({ event, step }) => step.run("push", () => ({ contact: event.data.contactId })),
  );

  /** One alert per host per 10 minutes; the rest are skipped (and shown as Skipped). */
  const alertOnCall = app.createFunction(
    { id: "alert-on-call", rateLimit: { limit: 1, period: "10m", key: "event.data.host" } },
    { event: "ops/host.down" },
    async ({ event, step }) => step.run("page", () => ({ paged: event.data.host })),
  );

  /** Re-index a document once its edits stop for 5 s (at most 30 s after the first), with every edit. */
  const reindex = app.createFunction(
    { id: "reindex-document", debounce: { period: "5s", key: "event.data.docId", timeout: "30s", events: "all" } },
    { event: "docs/document.edited" },
    async ({ event, events, step }) => step.run("index", () => ({ docId: event.data.docId, edits: events.length })),
  );

  /** Write page views to storage 100 at a time, or every 5 s. */
  const recordViews = app.createFunction(
    { id: "record-views", batchEvents: { maxSize: 100, timeout: "5s" } },
    { event: "web/page.viewed" },
    async ({ events, step }) => step.run("insert", () => ({ rows: events.length })),
  );

  /** Charge an order once, however often its event is sent in a day. */
  const chargeOrder = app.createFunction(
    { id: "charge-order", idempotency: "event.data.orderId" },
    { event: "shop/order.placed" },
    async ({ event, step }) => step.run("charge", () => ({ charged: event.data.orderId })),
  );

  /** One data export per user at a time: a new request replaces the one in progress. */
  const exportData = app.createFunction(
    { id: "export-data", singleton: { key: "event.data.userId", mode: "cancel" } },
    { event: "user/export.requested" },
    async ({ event, step }) => {
      await step.sleep("gather", "2s");
      return step.run("export", () => ({ userId: event.data.userId }));
    },
  );

  return [importProducts, syncCrm, alertOnCall, reindex, recordViews, chargeOrder, exportData];
}
