import { describe, expect, it } from "vitest";
import { finishedRuns, getRun, request, sendEvents, uniqueKey } from "./helpers.ts";
import { orderPlaced } from "./compat.functions.ts";

describe("Inngest v4's form", () => {
  it("runs a function whose config holds its triggers, an event type among them", async () => {
    const orderId = uniqueKey("order");
    const [eventId] = await sendEvents(orderPlaced.create({ orderId, total: 12.5 }));
    const runs = await finishedRuns(eventId!);
    expect(runs.get("compat-receipt")).toMatchObject({ status: "Completed", output: `${orderId}:12.50` });
  });

  it("refuses an event whose data its type's schema refuses, with a 400 that names the field, and stores nothing", async () => {
    const orderId = uniqueKey("bad-order");
    const response = await request("/e/dev", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ name: "test/other", data: {} }, { name: orderPlaced.name, data: { orderId, total: -1 } }]),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; path: string };
    expect(body.path).toBe("1.data.total");
    expect(body.error).toMatch(/event 1 \(test\/compat.order-placed\): data\.total/);
    // A data-less event of that type is refused too.
    expect((await request("/e/dev", { method: "POST", body: JSON.stringify({ name: orderPlaced.name }) })).status).toBe(400);
  });

  it("takes cron() triggers beside events, as GET /v1/functions shows", async () => {
    const body = (await (await request("/v1/functions")).json()) as { data: { id: string; triggers: unknown[]; crons: { cron: string; timezone: string }[] }[] };
    const nightly = body.data.find((fn) => fn.id === "compat-nightly")!;
    expect(nightly.triggers).toEqual([{ cron: "TZ=Europe/Paris 0 3 * * *" }, { event: "test/compat.nightly-now" }]);
    expect(nightly.crons[0]).toMatchObject({ timezone: "Europe/Paris" });
  });
});

describe("step.fetch", () => {
  it("sends the request once and gives the run the memoized response after a sleep", async () => {
    const key = uniqueKey("fetch");
    const [eventId] = await sendEvents({ name: "test/compat.fetch", data: { key } });
    const run = (await finishedRuns(eventId!)).get("compat-fetch")!;
    expect(run).toMatchObject({ status: "Completed", output: { status: 202, statusText: "Accepted", echo: "1", body: { method: "POST", path: `/${key}`, body: "ping", hits: 1 } } });
    const detail = await getRun(run.run_id);
    expect(detail.steps?.map((s) => [s.name, s.kind])).toEqual([["step.fetch: echo.stepflare.test", "fetch"], ["nap", "sleep"]]);
    // The echo host counted one request, though the handler ran again after its sleep.
    expect(await (await fetch(`http://echo.stepflare.test/hits/${key}`)).json()).toEqual({ hits: 1 });
  });
});
