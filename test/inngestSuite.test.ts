// Inngest's own scenarios (inngest-js, packages/inngest/src/test/functions/*/index.test.ts) against
// the Worker, each asserting what Inngest's test asserts, read through the REST API as its
// helpers read the Dev Server's timeline. The functions are in test/inngestSuite.functions.ts.
import { describe, expect, it } from "vitest";
import type { ServeOptions } from "../worker/serve.ts";
import { finishedRuns, getRun, request, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";
import { v3App, v3OrderReceipt } from "./inngestSuite.v3.functions.ts";

type Step = NonNullable<RunJson["steps"]>[number];

function stepNamed(run: RunJson, name: string): Step {
  const found = run.steps?.find((s) => s.name === name);
  expect(found, `step "${name}" in ${JSON.stringify(run.steps?.map((s) => s.name))}`).toBeDefined();
  return found!;
}

describe("handling-step-errors", () => {
  it("keeps a step's error's cause: the handler reads err.cause.message and the run completes", async () => {
    const [eventId] = await sendEvents({ name: "demo/handling.step.errors", data: {} });
    const run = (await finishedRuns(eventId!)).get("handling-step-errors")!;
    expect(run.status).toBe("Completed");
    const detail = await getRun(run.run_id);

    // ran "a" step and it failed (once here: retries 0; see test/worker.ts)
    const a = stepNamed(detail, "a");
    expect(a).toMatchObject({ kind: "run", status: "Failed" });
    expect(a.error).toEqual({
      name: "Error",
      message: "Oh no!",
      stack: expect.any(String),
      cause: expect.objectContaining({ name: "Error", message: "This is the cause" }),
    });
    // ran "b" step
    expect(stepNamed(detail, "b")).toMatchObject({ status: "Completed", output: `err was: "Oh no!" and the cause was: "This is the cause"` });
    // ran "c succeeds" step
    expect(stepNamed(detail, "c succeeds")).toMatchObject({ status: "Completed", output: "c succeeds" });
    // ran "d fails" step and it failed (Inngest shows `cause: null`; an error without a cause has none here)
    const d = stepNamed(detail, "d fails");
    expect(d).toMatchObject({ status: "Failed" });
    expect(d.error).toEqual({ name: "Error", message: "D failed!", stack: expect.any(String) });
    // ran "e succeeds" step
    expect(stepNamed(detail, "e succeeds")).toMatchObject({ status: "Completed", output: { errMessage: "D failed!" } });
  });

  it("shows the cause on the run's dashboard page", async () => {
    const [eventId] = await sendEvents({ name: "demo/handling.step.errors", data: {} });
    const run = (await finishedRuns(eventId!)).get("handling-step-errors")!;
    const page = await (await request(`/runs/${run.run_id}`)).text();
    expect(page).toContain("Caused by");
    expect(page).toContain("This is the cause");
  });
});

describe("step-invoke-not-found", () => {
  it("fails the invoke step with an Error that says it could not find the function, and the run with it", async () => {
    const [eventId] = await sendEvents({ name: "demo/step.invoke.not-found", data: {} });
    const run = (await finishedRuns(eventId!)).get("step-invoke-not-found")!;
    expect(run.status).toBe("Failed");
    const step = stepNamed(await getRun(run.run_id), "invoke-non-existent-fn");
    expect(step).toMatchObject({ kind: "invoke", status: "Failed" });
    const error = step.error as { name: string; message: string };
    expect(error.name).toEqual("Error");
    expect(error.message).toContain("could not find function");
  });
});

describe("v3: EventSchemas and InngestMiddleware", () => {
  it("runs a function of a client with schemas and middleware: its context has what transformInput added, its output what transformOutput made", async () => {
    const orderId = uniqueKey("order");
    const [eventId] = await sendEvents({ name: "demo/v3.order.placed", data: { orderId, total: 12.5 } });
    const run = (await finishedRuns(eventId!)).get("v3-order-receipt")!;
    expect(run).toMatchObject({ status: "Completed", output: { receipt: `${orderId}: 12.50 EUR` } });
  });

  it("checks the zod schema given to EventSchemas at the event API: a 400 that names the field, and no run", async () => {
    const response = await request("/e/dev", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ name: "demo/v3.order.placed", data: { orderId: uniqueKey("bad"), total: -1 } }]),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; path: string };
    expect(body.path).toBe("0.data.total");
    expect(body.error).toMatch(/event 0 \(demo\/v3.order.placed\): data\.total/);
    // A types-only event (fromRecord) is not checked.
    expect((await request("/e/dev", { method: "POST", body: JSON.stringify({ name: "demo/v3.greeted", data: { anything: 1 } }) })).status).toBe(200);
  });
});

// A client with v3 middleware and EventSchemas is served as any other (a check at compile time).
export const v3Served: ServeOptions = { client: v3App, functions: [v3OrderReceipt] };
