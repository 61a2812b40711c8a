/**
 * `wrangler dev` as a user runs it (migrations applied, then the dev server), driven over HTTP only:
 * the event API, the REST API, and the official `inngest` SDK sending to it.
 *
 * The server runs detached in its own process group, which afterAll (and a process exit hook) kills
 * by group id: wrangler starts npm, node, esbuild and workerd children, and none may outlive the test.
 */
import { Inngest } from "inngest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineEventId, RESERVED_ID_PREFIX } from "../../sdk/event.ts";
import { runIdFor } from "../../worker/platform/runId.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const RUN_TIMEOUT_MS = 30_000;

let dev: DevServer;
let baseUrl = "";

interface RunSummary {
  run_id: string;
  function_id: string;
  event_id: string;
  status: string;
  output: unknown;
  error: { message?: string } | null;
}
interface RunDetail extends RunSummary {
  steps: { id: string; name: string; status: string; attempts: number; output: unknown }[];
}

async function getJson<T>(urlPath: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${baseUrl}${urlPath}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as T };
}

async function postEvents(body: unknown, key = "dev"): Promise<{ status: number; body: { ids?: string[]; status?: number; error?: string } }> {
  const res = await fetch(`${baseUrl}/e/${key}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as { ids?: string[]; status?: number; error?: string } };
}

const TERMINAL = new Set(["Completed", "Failed", "Cancelled", "Skipped"]);

/** Waits until the event has `count` runs and all of them are finished; answers them. */
function finishedRuns(eventId: string, count = 1): Promise<RunSummary[]> {
  return waitFor(`${count} finished run(s) of event ${eventId}`, RUN_TIMEOUT_MS, dev, async () => {
    const { status, body } = await getJson<{ data: RunSummary[] }>(`/v1/events/${encodeURIComponent(eventId)}/runs`);
    if (status !== 200) return undefined;
    return body.data.length >= count && body.data.every((run) => TERMINAL.has(run.status)) ? body.data : undefined;
  });
}

beforeAll(async () => {
  dev = await startDevServer(["wrangler.toml"], "/v1/functions");
  baseUrl = dev.baseUrl;
});

afterAll(async () => {
  await dev?.stop();
});

describe("wrangler dev", () => {
  it("lists the example functions", async () => {
    const { status, body } = await getJson<{ data: { id: string; triggers: unknown[] }[] }>("/v1/functions");
    expect(status).toBe(200);
    const ids = body.data.map((fn) => fn.id);
    expect(ids).toEqual(expect.arrayContaining(["hello", "import-product-images", "urgent-shop-events", "charge-card"]));
    expect(body.data.find((fn) => fn.id === "hello")?.triggers).toEqual([{ event: "demo/hello" }]);
  });

  it("runs demo/hello and shop/product.imported sent to POST /e/:key", async () => {
    const sent = await postEvents([
      { name: "demo/hello", data: { name: "E2E" } },
      { name: "shop/product.imported", data: { productId: "p-1", imageURLs: ["a", "b"] } },
    ]);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ status: 200 });
    const [helloId, importId] = sent.body.ids ?? [];
    expect(helloId).toBeTypeOf("string");
    expect(importId).toBeTypeOf("string");

    const [helloRuns, importRuns] = await Promise.all([finishedRuns(helloId!), finishedRuns(importId!)]);
    expect(helloRuns).toMatchObject([{ function_id: "hello", event_id: helloId, status: "Completed", output: { greeting: "Hello, E2E!" } }]);
    expect(importRuns).toMatchObject([
      {
        function_id: "import-product-images",
        event_id: importId,
        status: "Completed",
        output: { sizes: [{ url: "a?copied", width: 100 }, { url: "b?copied", width: 200 }] },
      },
    ]);

    const hello = await getJson<{ data: RunDetail }>(`/v1/runs/${helloRuns[0]!.run_id}`);
    expect(hello.status).toBe(200);
    expect(hello.body.data.steps).toMatchObject([{ name: "greet", status: "Completed", attempts: 1, output: "Hello, E2E!" }]);

    const imported = await getJson<{ data: RunDetail }>(`/v1/runs/${importRuns[0]!.run_id}`);
    expect(imported.status).toBe(200);
    const steps = imported.body.data.steps;
    expect(steps.map((step) => step.name)).toEqual(["copy-images", "wait", "resize", "resize:1", "announce"]);
    expect(steps.every((step) => step.status === "Completed")).toBe(true);
    expect(steps[0]!.output).toEqual(["a?copied", "b?copied"]);

    // step.sendEvent stored a real event: the follow-up is in the event log.
    const announced = (steps[4]!.output as { ids: string[] }).ids[0]!;
    const followUp = await getJson<{ data: { name: string; data: unknown } }>(`/v1/events/${announced}`);
    expect(followUp.status).toBe(200);
    expect(followUp.body.data).toMatchObject({ name: "shop/product.ready", data: { productId: "p-1" } });
  });

  it("fails a run on NonRetriableError and says why", async () => {
    const sent = await postEvents({ name: "billing/charge.requested", data: { amount: 5 } });
    expect(sent.status).toBe(200);
    const [run] = await finishedRuns(sent.body.ids![0]!);
    expect(run).toMatchObject({ function_id: "charge-card", status: "Failed", error: { message: expect.stringContaining("card declined") } });
    const detail = await getJson<{ data: RunDetail }>(`/v1/runs/${run!.run_id}`);
    expect(detail.body.data.steps).toMatchObject([{ name: "charge", status: "Failed" }]);
  });

  it("prints a retried step's stack pointing at the source in the terminal", async () => {
    const sent = await postEvents({ name: "app/user.registered", data: { userId: "u-stack", email: "u@example.com" } });
    expect(sent.status).toBe(200);
    // verify-user's first attempt of send-welcome throws (examples/tracing.ts): the JSON line, then its stack, mapped by wrangler.
    const printed = await waitFor("the step's mapped stack", 30_000, dev, async () => {
      // Without the terminal's colour codes.
      const log = dev.log().replace(/\x1b\[[0-9;]*m/g, "");
      const at = log.indexOf('step \\"send-welcome\\" failed; retrying');
      return at >= 0 && /examples\/tracing\.ts:\d+:\d+/.test(log.slice(at)) ? log.slice(at) : undefined;
    });
    expect(printed).toMatch(/RetryAfterError: the mail service is warming up\s+at [^\n]*examples\/tracing\.ts:\d+:\d+/);
  });

  it("answers 4xx JSON errors for bad input and unknown ids", async () => {
    const bad = await postEvents({ data: {} });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/name/);
    const run = await getJson<{ error: string }>("/v1/runs/no-such-run");
    expect(run.status).toBe(404);
    expect(run.body.error).toBeTypeOf("string");
  });

  it("accepts events from the official inngest SDK", async () => {
    // inngest v4: an explicit baseUrl is where send() posts (`<baseUrl>/e/<eventKey>`); with an
    // eventKey set, cloud mode sends without complaint, so no isDev or INNGEST_* env is needed.
    const inngest = new Inngest({ id: "e2e", baseUrl, eventKey: "dev" });
    const { ids } = await inngest.send([
      { name: "demo/hello", data: { name: "SDK" } },
      { name: "shop/product.imported", data: { productId: "p-sdk", imageURLs: ["x"] } },
      { name: "demo/hello", id: "e2e-sdk-dedupe-key", data: { name: "Keyed" } },
    ]);
    expect(ids).toHaveLength(3);
    expect(ids[2]).toBe("e2e-sdk-dedupe-key");

    for (const id of ids) {
      const stored = await getJson<{ data: { id: string } }>(`/v1/events/${encodeURIComponent(id)}`);
      expect(stored.status).toBe(200);
      expect(stored.body.data.id).toBe(id);
    }
    const [greeted, imported, keyed] = await Promise.all(ids.map((id) => finishedRuns(id)));
    expect(greeted).toMatchObject([{ function_id: "hello", status: "Completed", output: { greeting: "Hello, SDK!" } }]);
    expect(imported).toMatchObject([{ function_id: "import-product-images", status: "Completed", output: { sizes: [{ url: "x?copied", width: 100 }] } }]);
    expect(keyed).toMatchObject([{ function_id: "hello", status: "Completed", output: { greeting: "Hello, Keyed!" } }]);
  });

  it("fires a cron function from scheduled() when the wrangler.toml trigger names its cron", async () => {
    const cron = "TZ=Europe/Paris 0 9 * * 1";
    const scheduledTime = Date.parse("2026-11-23T08:00:00Z"); // a Monday, 09:00 in Paris
    const res = await fetch(`${baseUrl}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent(cron)}&time=${scheduledTime}`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    const runId = runIdFor("weekly-report", `${RESERVED_ID_PREFIX}cron ${cron}`, scheduledTime);
    const run = await waitFor(`cron run ${runId}`, RUN_TIMEOUT_MS, dev, async () => {
      const { status, body } = await getJson<{ data: RunSummary & { scheduled_at?: string } }>(`/v1/runs/${runId}`);
      return status === 200 && body.data.status === "Completed" ? body.data : undefined;
    });
    expect(run).toMatchObject({ function_id: "weekly-report", scheduled_at: "2026-11-23T08:00:00.000Z", output: { orders: 42, revenue: 1234.5 } });
  });
  /** The one run of `eventId`, once it has a run in the index. */
  function runOf(eventId: string): Promise<RunSummary> {
    return waitFor(`the run of event ${eventId}`, RUN_TIMEOUT_MS, dev, async () => {
      const { status, body } = await getJson<{ data: RunSummary[] }>(`/v1/events/${encodeURIComponent(eventId)}/runs`);
      return status === 200 && body.data.length === 1 ? body.data[0] : undefined;
    });
  }

  /** Waits until step `name` of the run waits (its wait stored), so a later event counts. */
  function stepWaiting(runId: string, name: string): Promise<true> {
    return waitFor(`step ${name} of run ${runId} waiting`, RUN_TIMEOUT_MS, dev, async () => {
      const { body } = await getJson<{ data: RunDetail }>(`/v1/runs/${runId}`);
      return body.data.steps.some((step) => step.name === name && step.status === "Waiting") ? true : undefined;
    });
  }

  it("onboarding: waits for the user's activation, matched on the user id, then branches", async () => {
    const userId = `u-${Date.now()}`;
    const [signupId] = (await postEvents({ name: "app/user.signup", data: { userId, email: "ada@example.com" } })).body.ids!;
    const run = await runOf(signupId!);
    await stepWaiting(run.run_id, "wait-for-activation");
    await postEvents({ name: "app/user.activated", data: { userId: "someone-else", plan: "free" } });
    await postEvents({ name: "app/user.activated", data: { userId, plan: "pro" } });
    const [done] = await finishedRuns(signupId!);
    expect(done).toMatchObject({ status: "Completed", output: { to: "ada@example.com", plan: "pro" } });
  });

  it("checkout invokes price-order and uses its output; the child shows its parent", async () => {
    const [eventId] = (await postEvents({ name: "shop/checkout.started", data: { orderId: "o-1", items: [{ price: 5, quantity: 3 }] } })).body.ids!;
    const [parent] = await finishedRuns(eventId!);
    expect(parent).toMatchObject({ function_id: "checkout", status: "Completed", output: { orderId: "o-1", charged: 15 } });
    const { body } = await getJson<{ data: { children: { run_id: string }[] } }>(`/v1/runs/${parent!.run_id}`);
    const child = await getJson<{ data: RunSummary & { parent_run_id: string } }>(`/v1/runs/${body.data.children[0]!.run_id}`);
    expect(child.body.data).toMatchObject({ function_id: "price-order", parent_run_id: parent!.run_id, output: { total: 15 } });
  });

  it("trial-drip is cancelled by the user's upgrade, and onCancel runs", async () => {
    const userId = `u-${Date.now()}`;
    const [eventId] = (await postEvents({ name: "app/trial.started", data: { userId } })).body.ids!;
    const run = await runOf(eventId!);
    // Its cancelOn is in the waits index once the run has started; an upgrade then cancels it.
    await waitFor(`run ${run.run_id} sleeping`, RUN_TIMEOUT_MS, dev, async () => {
      const { body } = await getJson<{ data: RunDetail }>(`/v1/runs/${run.run_id}`);
      return body.data.steps.some((step) => step.status === "Sleeping") ? true : undefined;
    });
    await postEvents({ name: "app/user.upgraded", data: { userId } });
    const [cancelled] = await finishedRuns(eventId!);
    expect(cancelled!.status).toBe("Cancelled");
    const [onCancel] = await finishedRuns(engineEventId(run.run_id, "cancelled"));
    expect(onCancel).toMatchObject({ function_id: "trial-drip-cancel", status: "Completed" });
  });

  it("reminder: an event with a future ts runs then, Queued until", async () => {
    const at = Date.now() + 3000;
    const [eventId] = (await postEvents({ name: "app/reminder.scheduled", data: { message: "stand up" }, ts: at })).body.ids!;
    expect((await runOf(eventId!)).status).toBe("Queued");
    const [done] = await finishedRuns(eventId!);
    expect(done).toMatchObject({ status: "Completed", output: { message: "stand up" } });
    expect(Date.parse((done!.output as { sentAt: string }).sentAt)).toBeGreaterThanOrEqual(at);
  });
  it("flow control: charge-order runs once per order id, alert-on-call skips the second alert, import-products runs under its limits", async () => {
    const orderId = `o-${Date.now()}`;
    const orders = (await postEvents([1, 2].map(() => ({ name: "shop/order.placed", data: { orderId } })))).body.ids!;
    const alerts = (await postEvents([1, 2].map(() => ({ name: "ops/host.down", data: { host: orderId } })))).body.ids!;
    const [imported] = (await postEvents({ name: "shop/import.requested", data: { shopId: orderId, plan: "priority" } })).body.ids!;
    const orderRuns = await waitFor("one charge", RUN_TIMEOUT_MS, dev, async () => {
      const lists = await Promise.all(orders.map((id) => getJson<{ data: RunSummary[] }>(`/v1/events/${id}/runs`)));
      const runs = lists.flatMap((list) => list.body.data ?? []);
      return runs.length === 1 && runs[0]!.status === "Completed" ? runs : undefined;
    });
    expect(orderRuns[0]!.output).toEqual({ charged: orderId });
    const alertRuns = (await Promise.all(alerts.map((id) => finishedRuns(id)))).flat();
    expect(alertRuns.map((run) => run.status).sort()).toEqual(["Completed", "Skipped"]);
    expect((await finishedRuns(imported!))[0]).toMatchObject({ status: "Completed", output: { shopId: orderId, imported: true } });
  });
});
