/**
 * "Bring your Inngest app" with the app on Cloudflare too: examples/inngest-app, the official SDK
 * served by `inngest/hono` from a Worker of its own under a second `wrangler dev` (only the first
 * config of one `wrangler dev` gets a port), pointed at Stepflare by INNGEST_BASE_URL. Stepflare
 * syncs it, runs its functions, and every step body runs in the app's workerd, not in Stepflare's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../bench/lib/processes.mjs";
import { stepflareApi, type RunDetail } from "./stepflareApi.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const RUN_TIMEOUT_MS = 45_000;
const FUNCTION_IDS = ["hono-app-fulfil-order", "hono-app-nightly-report", "hono-app-request-receipt", "hono-app-send-receipt"];

let stepflare: DevServer;
let appWorker: DevServer;

type Run = RunDetail;
let api: ReturnType<typeof stepflareApi>["api"];
let endedRunOf: ReturnType<typeof stepflareApi>["finished"];

async function send(name: string, data: Record<string, unknown>): Promise<string> {
  const { status, body } = await api<{ ids: string[] }>("POST", "/e/dev", { name, data });
  expect(status).toBe(200);
  return body.ids[0]!;
}

/** The run `runId` once it has ended, with its steps. */
function ended(runId: string): Promise<Run> {
  return waitFor(`run ${runId} to end`, RUN_TIMEOUT_MS, stepflare, async () => {
    const { body } = await api<{ data: Run }>("GET", `/v1/runs/${runId}`);
    return ["Completed", "Failed", "Cancelled"].includes(body.data?.status) ? body.data : undefined;
  });
}

function failureText(run: Run): string {
  return `${run.status}: ${JSON.stringify(run.error)}\n--- app worker (tail) ---\n${appWorker.log().slice(-3000)}`;
}

beforeAll(async () => {
  const port = await freePort();
  [stepflare, appWorker] = await Promise.all([
    startDevServer(["wrangler.toml"], "/v1/functions", { port }),
    // Not Stepflare: no D1 of its own, no STEPFLARE_DEV; the SDK's base URL is this run's Stepflare.
    startDevServer(["examples/inngest-app/wrangler.toml"], "/api/inngest", { devMode: false, migrations: false, vars: { INNGEST_BASE_URL: `http://127.0.0.1:${port}` } }),
  ]);
  ({ api, finished: endedRunOf } = stepflareApi(stepflare, { runTimeoutMs: RUN_TIMEOUT_MS }));
  const synced = await api<{ data: { id: string } }>("POST", "/v1/apps", { url: `${appWorker.baseUrl}/api/inngest` });
  expect(synced.status, JSON.stringify(synced.body)).toBe(200);
});

afterAll(async () => {
  await appWorker?.stop();
  await stepflare?.stop();
});

describe("an inngest/hono app on a Worker of its own, run by Stepflare", () => {
  it("syncs: the app, its framework and its four functions, the cron one with its schedule", async () => {
    const apps = await api<{ data: { id: string; url: string; framework: string | null; error: string | null; functions: { id: string }[] }[] }>("GET", "/v1/apps");
    const app = apps.body.data.find((entry) => entry.id === "hono-app");
    expect(app).toMatchObject({ url: `${appWorker.baseUrl}/api/inngest`, framework: "hono", error: null });
    expect(app!.functions.map((fn) => fn.id).sort()).toEqual(FUNCTION_IDS);
    const functions = await api<{ data: { id: string; triggers: unknown[]; crons: { cron: string }[] }[] }>("GET", "/v1/functions");
    const nightly = functions.body.data.find((fn) => fn.id === "hono-app-nightly-report");
    expect(nightly?.triggers).toEqual([{ cron: "0 3 * * *" }]);
    expect(nightly?.crons.map((cron) => cron.cron)).toEqual(["0 3 * * *"]);
  });

  it("runs a multi-step function: a step, a sleep, then two steps in parallel", async () => {
    const eventId = await send("store/order.placed", { orderId: "o-1", items: 3 });
    const run = await endedRunOf(eventId, "hono-app-fulfil-order");
    expect(run.status, failureText(run)).toBe("Completed");
    expect(run.output).toEqual({ orderId: "o-1", reserved: 3, charged: 30 });
    expect(run.steps.map((step) => step.name).sort()).toEqual(["charge-card", "cool-off", "load-order", "reserve-stock"]);
    expect(run.steps.every((step) => step.status === "Completed")).toBe(true);
  });

  it("step.sendEvent sends through Stepflare, and the event starts the app's other function", async () => {
    const eventId = await send("store/order.paid", { orderId: "o-2" });
    const run = await endedRunOf(eventId, "hono-app-request-receipt");
    expect(run.status, failureText(run)).toBe("Completed");
    const { receiptEventId } = run.output as { receiptEventId: string };
    expect(receiptEventId).toEqual(expect.any(String));
    expect(run.steps.find((step) => step.name === "ask-for-receipt")?.status).toBe("Completed");
    const receipt = await endedRunOf(receiptEventId, "hono-app-send-receipt");
    expect(receipt.status, failureText(receipt)).toBe("Completed");
    expect(receipt.output).toBe("receipt for order o-2");
  });

  it("runs the cron function now, as its schedule would", async () => {
    const started = await api<{ data: { run_id: string } }>("POST", "/v1/functions/hono-app-nightly-report/trigger");
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const run = await ended(started.body.data.run_id);
    expect(run.status, failureText(run)).toBe("Completed");
    expect(run.output).toEqual({ report: "nightly", trigger: "inngest/scheduled.timer" });
  });
});
