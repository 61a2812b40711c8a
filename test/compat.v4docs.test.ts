// Inngest v4's documented shapes, run under the Workers pool (test/compat.v4docs.functions.ts).
import { describe, expect, it } from "vitest";
import { effectCount, eventually, finishedRuns, getRun, request, runIdOf, sendEvents, uniqueKey } from "./helpers.ts";
import { inngest, orderPlaced, paymentConfirmed } from "./compat.v4docs.functions.ts";

describe("Inngest v4's docs, with the import swapped", () => {
  it("runs a multi-step order: an event type's data, an invoke by reference with injected pricing, a sleep, a wait, a send through middleware", async () => {
    const orderId = uniqueKey("order");
    // Sent with the app's own client: its middleware and the event type's schema apply.
    const { ids } = await inngest.send(orderPlaced.create({ orderId, items: [{ sku: "a", price: 10 }, { sku: "b", price: 5 }] }));
    const runId = await runIdOf(ids[0]!);
    // The wait began once the run reached it; then the payment arrives.
    await eventually(async () => ((await getRun(runId)).steps?.some((s) => s.name === "wait-for-payment") ? true : undefined), 15_000, "the wait for payment");
    await inngest.send(paymentConfirmed.create({ orderId }));
    const run = (await finishedRuns(ids[0]!)).get("v4docs-process-order")!;
    expect(run).toMatchObject({ status: "Completed", output: { status: "confirmed", reserved: ["a", "b"], total: { net: 15, gross: 18 } } });

    // The confirmation went out stamped by the client's transformSendEvent.
    const confirmation = (run.output as { confirmation: string }).confirmation;
    const sent = (await (await request(`/v1/events/${confirmation}`)).json()) as { data: { name: string; data: Record<string, unknown> } };
    expect(sent.data).toMatchObject({ name: "v4docs/order.confirmed", data: { orderId, gross: 18, sentBy: "v4docs-app" } });

    // The logging middleware saw each step run once, though the handler replayed after the invoke, the sleep and the wait.
    const detail = await getRun(runId);
    expect(detail.steps?.map((s) => s.name)).toEqual(["reserve-stock", "compute-total", "cool-off", "wait-for-payment", "order-confirmed"]);
    expect(await effectCount(`${runId}:started:reserve-stock`)).toBe(1);
    expect(await effectCount(`${runId}:started:order-confirmed`)).toBe(1);
    // Steps whose code does not run here (invoke, sleep, wait) are never "started".
    expect(await effectCount(`${runId}:started:cool-off`)).toBe(0);
  });

  it("refuses an order whose data its event type's schema refuses", async () => {
    await expect(inngest.send(orderPlaced.create({ orderId: "o", items: [] }))).rejects.toThrow(/data\.items/);
  });

  it("stops retrying at a NonRetriableError", async () => {
    const [eventId] = await sendEvents({ name: "v4docs/user.import", data: { email: "not-an-email" } });
    const run = (await finishedRuns(eventId!)).get("v4docs-import-user")!;
    expect(run).toMatchObject({ status: "Failed", error: { name: "StepError" } });
    const detail = await getRun(run.run_id);
    expect(detail.steps?.[0]).toMatchObject({ name: "validate", status: "Failed", attempts: 1 });
  });

  it("races two steps with group.parallel, then keeps one experiment variant", async () => {
    const [eventId] = await sendEvents({ name: "v4docs/quote.requested", data: {} });
    const run = (await finishedRuns(eventId!)).get("v4docs-fastest-quote")!;
    const output = run.output as { winner: string; variant: string; price: number };
    expect(output.winner).toBe("carrier-b");
    expect(output.price).toBe(output.variant === "classic" ? 10 : 8);
    const steps = (await getRun(run.run_id)).steps!;
    expect(steps.find((s) => s.name === "pricing-page")).toMatchObject({ status: "Completed", output: output.variant });
    // Only the chosen variant's step ran.
    expect(steps.map((s) => s.name).filter((name) => name.endsWith("-price"))).toEqual([`${output.variant}-price`]);
  });

  it("fetches durably with step.fetch: one request, its response memoized across the sleep", async () => {
    const key = uniqueKey("rates");
    const [eventId] = await sendEvents({ name: "v4docs/rates.refresh", data: { key } });
    const run = (await finishedRuns(eventId!)).get("v4docs-exchange-rates")!;
    expect(run).toMatchObject({ status: "Completed", output: { status: 202, sent: { base: "EUR" }, hits: 1 } });
    expect(await (await fetch(`http://echo.stepflare.test/hits/rates/${key}`)).json()).toEqual({ hits: 1 });
  });

  it("runs a cron function, declared with cron(), when asked to", async () => {
    const response = await request("/v1/functions/v4docs-nightly-report/trigger", { method: "POST" });
    const { data } = (await response.json()) as { data: { run_id: string } };
    const run = await eventually(async () => {
      const current = await getRun(data.run_id);
      return current.status === "Completed" ? current : undefined;
    });
    expect(run.output).toEqual({ built: true });
    const fns = (await (await request("/v1/functions")).json()) as { data: { id: string; triggers: unknown[]; config: Record<string, unknown> }[] };
    const order = fns.data.find((fn) => fn.id === "v4docs-process-order")!;
    expect(order.triggers).toEqual([{ event: "v4docs/order.placed" }]);
    expect(fns.data.find((fn) => fn.id === "v4docs-nightly-report")!.triggers).toEqual([{ cron: "TZ=America/New_York 0 2 * * *" }]);
  });
});
