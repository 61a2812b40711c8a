/**
 * A remote function's config as the real `inngest` SDK syncs it, read into the registry's shape:
 * every option a v4 function can set, with Inngest's meaning (`retries` the retry count, a
 * `cancelOn.match` as the SDK's `if`, `onFailure` as a function of its own).
 */
import { Inngest } from "inngest";
import { serve } from "inngest/edge";
import { describe, expect, it } from "vitest";
import { RemoteFunction } from "./function.ts";
import { wireFunctionSchema } from "./wire.ts";

const silent = { info() {}, warn() {}, error() {}, debug() {} };

/** The functions of an app as its in-band sync describes them. */
async function synced(functions: (inngest: Inngest) => unknown[]): Promise<unknown[]> {
  const inngest = new Inngest({ id: "shop", isDev: true, logger: silent });
  const handler = serve({ client: inngest, functions: functions(inngest) as Parameters<typeof serve>[0]["functions"] });
  const url = "http://app.test/api/inngest";
  const res = await handler(new Request(url, { method: "PUT", headers: { host: "app.test", "x-inngest-sync-kind": "in_band", "content-type": "application/json" }, body: JSON.stringify({ url }) }));
  return ((await res.json()) as { functions: unknown[] }).functions;
}

describe("RemoteFunction", () => {
  it("reads every option of a v4 function as the SDK syncs it", async () => {
    const [wire] = await synced((inngest) => [
      inngest.createFunction(
        {
          id: "fulfil",
          name: "Fulfil an order",
          retries: 7,
          triggers: [{ event: "shop/order.paid", if: "event.data.total > 10" }, { cron: "TZ=Europe/Paris 0 9 * * *" }],
          concurrency: [{ limit: 5 }, { limit: 2, key: "event.data.customerId" }],
          throttle: { limit: 10, period: "1m", burst: 2, key: "event.data.customerId" },
          idempotency: "event.data.orderId",
          priority: { run: "event.data.vip ? 120 : 0" },
          timeouts: { start: "5m", finish: "1h" },
          cancelOn: [{ event: "shop/order.cancelled", match: "data.orderId", timeout: "2h" }],
        },
        async () => "done",
      ),
    ]);
    const fn = new RemoteFunction("shop", wireFunctionSchema.parse(wire));
    expect(fn.id).toBe("shop-fulfil");
    expect(fn.name).toBe("Fulfil an order");
    expect(fn.retries).toBe(7);
    expect(fn.remote).toEqual({ appId: "shop", url: "http://app.test/api/inngest?fnId=shop-fulfil&stepId=step" });
    expect(fn.triggers).toEqual([{ event: "shop/order.paid", if: "event.data.total > 10" }, { cron: "TZ=Europe/Paris 0 9 * * *" }]);
    const paid = (total: number) => ({ id: "e", name: "shop/order.paid", data: { total, customerId: "c1", orderId: "o1", vip: true }, ts: 0 });
    expect([fn.matches(paid(20)), fn.matches(paid(5))]).toEqual([true, false]);
    expect(fn.crons.map((schedule) => schedule.timezone)).toEqual(["Europe/Paris"]);
    expect(fn.flow.concurrency?.map(({ limit, key }) => ({ limit, key }))).toEqual([{ limit: 5, key: undefined }, { limit: 2, key: "event.data.customerId" }]);
    expect(fn.flow.concurrency?.[1]?.keyOf(paid(20))).toBe("c1");
    expect(fn.flow.throttle).toMatchObject({ limit: 10, period: 60_000, burst: 2 });
    expect(fn.flow.idempotency?.keyOf(paid(20))).toBe("o1");
    expect(fn.flow.priorityOf?.(paid(20))).toBe(120);
    expect(fn.timeouts).toEqual({ start: 300_000, finish: 3_600_000 });
    // The SDK turns `match` into the `if` Inngest evaluates: `event` the run's trigger, `async` the incoming event.
    expect(fn.cancelOn).toEqual([{ event: "shop/order.cancelled", if: "event.data.orderId == async.data.orderId", timeout: 7_200_000 }]);
  });

  it("reads rateLimit, debounce, batchEvents and singleton, and onFailure as its own function", async () => {
    const functions = await synced((inngest) => [
      inngest.createFunction({ id: "digest", triggers: [{ event: "a/b" }], rateLimit: { limit: 1, period: "1h", key: "event.data.user" } }, async () => null),
      inngest.createFunction({ id: "search-index", triggers: [{ event: "a/c" }], debounce: { period: "5s", key: "event.data.doc", timeout: "1m" } }, async () => null),
      inngest.createFunction({ id: "bulk", triggers: [{ event: "a/d" }], batchEvents: { maxSize: 50, timeout: "10s" } }, async () => null),
      inngest.createFunction({ id: "sync", triggers: [{ event: "a/e" }], singleton: { key: "event.data.account", mode: "cancel" } }, async () => null),
      inngest.createFunction({ id: "charge", triggers: [{ event: "a/f" }], onFailure: async () => null }, async () => null),
    ]);
    const byId = new Map(functions.map((raw) => new RemoteFunction("shop", wireFunctionSchema.parse(raw))).map((fn) => [fn.id, fn]));
    expect(byId.get("shop-digest")?.flow.rateLimit).toMatchObject({ limit: 1, period: 3_600_000 });
    expect(byId.get("shop-search-index")?.flow.debounce).toMatchObject({ period: 5_000, timeout: 60_000 });
    expect(byId.get("shop-bulk")?.flow.batchEvents).toMatchObject({ maxSize: 50, timeout: 10_000 });
    expect(byId.get("shop-sync")?.flow.singleton).toMatchObject({ mode: "cancel" });
    // The SDK's failure handler: a function triggered by this function's inngest/function.failed events.
    const failure = byId.get("shop-charge-failure")!;
    const failed = (functionId: string) => ({ id: "e", name: "inngest/function.failed", data: { function_id: functionId }, ts: 0 });
    expect([failure.matches(failed("shop-charge")), failure.matches(failed("shop-other"))]).toEqual([true, false]);
  });

  it("refuses a config whose expression does not parse, naming it", async () => {
    const [wire] = await synced((inngest) => [inngest.createFunction({ id: "bad", triggers: [{ event: "a/b", if: "event.data.x ==" }] }, async () => null)]);
    expect(() => new RemoteFunction("shop", wireFunctionSchema.parse(wire))).toThrow(/function "shop-bad"/);
  });
});
