// Functions of the flow-control tests (test/flow.test.ts).
import type { Stepflare } from "../sdk/index.ts";

export function flowFunctions(app: Stepflare) {
  const idempotent = app.createFunction({ id: "flow-idempotent", idempotency: "event.data.orderId" }, { event: "test/flow.idempotent" }, async ({ event }) => ({ orderId: event.data.orderId }));

  const rateLimited = app.createFunction(
    { id: "flow-rate-limited", rateLimit: { limit: 2, period: "1m", key: "event.data.user" } },
    { event: "test/flow.rate-limited" },
    async ({ event }) => ({ n: event.data.n }),
  );

  const throttled = app.createFunction(
    { id: "flow-throttled", throttle: { limit: 2, period: "10s", burst: 1, key: "event.data.group" } },
    { event: "test/flow.throttled" },
    async ({ event }) => ({ n: event.data.n }),
  );

  const debounced = app.createFunction(
    { id: "flow-debounced", debounce: { period: "1s", key: "event.data.key" } },
    { event: "test/flow.debounced" },
    async ({ event, events }) => ({ last: event.data.n, count: events.length }),
  );

  const debouncedAll = app.createFunction(
    { id: "flow-debounced-all", debounce: { period: "1s", key: "event.data.key", events: "all" } },
    { event: "test/flow.debounced-all" },
    async ({ events }) => ({ ns: events.map((e) => e.data.n) }),
  );

  const batched = app.createFunction(
    { id: "flow-batched", batchEvents: { maxSize: 3, timeout: "1s", key: "event.data.key" } },
    { event: "test/flow.batched" },
    async ({ event, events }) => ({ first: event.data.n, ns: events.map((e) => e.data.n) }),
  );

  return [idempotent, rateLimited, throttled, debounced, debouncedAll, batched];
}
