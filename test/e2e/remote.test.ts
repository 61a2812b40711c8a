/**
 * "Bring your Inngest app": an app on the official `inngest` SDK, served by `inngest/node` from this
 * test process, synced to Stepflare under `wrangler dev` (`POST /v1/apps`), its functions run by
 * Stepflare's RunObjects over the SDK's wire protocol. Nothing in the app knows it is not Inngest.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Inngest } from "inngest";
import { serve } from "inngest/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { calls, createApp, NODE_APP_FUNCTION_IDS, serveApp } from "./remoteApp.ts";
import { stepflareApi, type RunDetail } from "./stepflareApi.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const RUN_TIMEOUT_MS = 45_000;

let dev: DevServer;
let app: ReturnType<typeof createApp>;
let served: Awaited<ReturnType<typeof serveApp>>;

type Run = RunDetail;
let api: ReturnType<typeof stepflareApi>["api"];
let finished: ReturnType<typeof stepflareApi>["finished"];

async function send(name: string, data: Record<string, unknown>): Promise<string> {
  const { ids } = await app.inngest.send({ name, data });
  return ids[0]!;
}

beforeAll(async () => {
  dev = await startDevServer(["wrangler.toml"], "/v1/functions");
  ({ api, finished } = stepflareApi(dev, { runTimeoutMs: RUN_TIMEOUT_MS }));
  app = createApp(dev.baseUrl);
  served = await serveApp(app);
  const synced = await api<{ data: { id: string; functions: { id: string }[] } }>("POST", "/v1/apps", { url: served.url });
  expect(synced.status, JSON.stringify(synced.body)).toBe(200);
});

afterAll(async () => {
  await served?.stop();
  await dev?.stop();
});

describe("an app on the inngest SDK, run by Stepflare", () => {
  it("syncs: the app and its functions (with the onFailure companion) join the registry", async () => {
    const apps = await api<{ data: { id: string; url: string; error: string | null; functions: { id: string }[] }[] }>("GET", "/v1/apps");
    const synced = apps.body.data.find((entry) => entry.id === "node-app");
    expect(synced).toMatchObject({ url: served.url, error: null });
    expect(synced!.functions.map((fn) => fn.id).sort()).toEqual(NODE_APP_FUNCTION_IDS);
    const functions = await api<{ data: { id: string; triggers: unknown[] }[] }>("GET", "/v1/functions");
    expect(functions.body.data.find((fn) => fn.id === "node-app-multi-step")?.triggers).toEqual([{ event: "remote/multi" }]);
    expect(functions.body.data.some((fn) => fn.id === "hello")).toBe(true);
  });

  it("runs a multi-step function with a sleep and parallel steps, each step once", async () => {
    const eventId = await send("remote/multi", { tag: "m1" });
    const run = await finished(eventId, "node-app-multi-step");
    expect(run.status).toBe("Completed");
    expect(run.output).toEqual({ a: "a-m1", b: "b", c: "c" });
    expect(run.steps!.map((step) => step.name).sort()).toEqual(["a", "b", "c", "nap"]);
    expect([calls.get("a:m1"), calls.get("b:m1"), calls.get("c:m1")]).toEqual([1, 1, 1]);
  });

  it("runs consecutive steps in one call when the SDK checkpoints them, one call per step when it does not", async () => {
    const callsFor = async (id: string) => {
      const before = served.answers.filter((answer) => answer.startsWith("POST")).length;
      const eventId = await send(`remote/${id}`, { tag: "seq" });
      const run = await finished(eventId, `node-app-${id}`);
      expect(run.output).toEqual({ total: 15 });
      expect(run.steps!.map((step) => [step.name, step.status])).toEqual([1, 2, 3, 4, 5].map((i) => [`add-${i}`, "Completed"]));
      for (let i = 1; i <= 5; i++) expect(calls.get(`${id}:${i}:seq`)).toBe(1);
      return served.answers.filter((answer) => answer.startsWith("POST")).length - before;
    };
    expect(await callsFor("checkpointed")).toBe(1);
    expect(await callsFor("uncheckpointed")).toBeGreaterThanOrEqual(6);
  });

  it("retries a failing step after the app's retry-after, and counts its attempts", async () => {
    const eventId = await send("remote/flaky", { tag: "f1" });
    const run = await finished(eventId, "node-app-flaky");
    expect(run.status).toBe("Completed");
    expect(run.output).toBe("ok after 2 attempts");
    expect(run.steps!.find((step) => step.name === "flaky-step")).toMatchObject({ status: "Completed", attempts: 2 });
    expect(calls.get("flaky:f1")).toBe(2);
  });

  it("fails at once on NonRetriableError, and the app's onFailure runs with the error", async () => {
    const eventId = await send("remote/doomed", { tag: "d1" });
    const run = await finished(eventId, "node-app-doomed");
    expect(run.status).toBe("Failed");
    expect(run.error?.message).toContain("card declined");
    expect(calls.get("give-up:d1")).toBe(1);
    await waitFor("the onFailure handler", RUN_TIMEOUT_MS, dev, async () => ([...calls.keys()].some((key) => key.startsWith("onFailure:d1:")) ? true : undefined));
    expect([...calls.keys()].find((key) => key.startsWith("onFailure:d1:"))).toContain("card declined");
  });

  it("resumes step.waitForEvent with the matching event", async () => {
    const eventId = await send("remote/wait", { id: "w-1" });
    // The wait is stored once the run has asked for it.
    await waitFor("the wait to be stored", RUN_TIMEOUT_MS, dev, async () => {
      const { body } = await api<{ data: Run[] }>("GET", `/v1/events/${eventId}/runs`);
      const runId = body.data?.[0]?.run_id;
      if (!runId) return undefined;
      const run = (await api<{ data: Run }>("GET", `/v1/runs/${runId}`)).body.data;
      return run.steps?.some((step) => step.name === "reply" && step.status === "Waiting") ? true : undefined;
    });
    await send("remote/reply", { id: "other", answer: "not this one" });
    await send("remote/reply", { id: "w-1", answer: 42 });
    const run = await finished(eventId, "node-app-waiter");
    expect(run.output).toEqual({ got: 42, for: "w-1" });
  });

  it("step.invoke reaches a function of the same app and one of the Stepflare Worker", async () => {
    const eventId = await send("remote/parent", { n: 21 });
    const run = await finished(eventId, "node-app-parent");
    expect(run.status, JSON.stringify(run.error)).toBe("Completed");
    expect(run.output).toMatchObject({ fromRemote: { doubled: 42 } });
    expect((run.output as { fromLocal: unknown }).fromLocal).toBeTruthy();
    // The child's end sent inngest/function.finished, which the app's audit function listens for.
    await waitFor("the finished event's run", RUN_TIMEOUT_MS, dev, async () => (calls.get(`finished:${JSON.stringify({ doubled: 42 })}`) ? true : undefined));
  });

  it("step.fetch: Stepflare makes the request for the app, once, and the response is memoized", async () => {
    const eventId = await send("remote/fetch", { url: served.url.replace("/api/inngest", "/echo") });
    const run = await finished(eventId, "node-app-fetcher");
    expect(run.status, JSON.stringify(run.error)).toBe("Completed");
    expect(run.output).toEqual({ status: 201, body: "POST ping", echoed: "1", text: "memoized" });
    expect(calls.get("echo")).toBe(1);
    expect(run.steps.find((step) => step.name.startsWith("step.fetch"))).toMatchObject({ status: "Completed" });
  });

  it("a local function invokes a remote one by its id", async () => {
    const eventId = await send("demo/delegate", { functionId: "node-app-child", data: { n: 4 } });
    const run = await finished(eventId, "delegate");
    expect(run.status, JSON.stringify(run.error)).toBe("Completed");
    expect(run.output).toEqual({ result: { doubled: 8 } });
  });

  it("the app's cancelOn cancels its sleeping run on a matching event, sent by the app or anyone", async () => {
    const eventId = await send("remote/long", { id: "c-1" });
    await waitFor("the run to sleep", RUN_TIMEOUT_MS, dev, async () => {
      const { body } = await api<{ data: Run[] }>("GET", `/v1/events/${eventId}/runs`);
      const runId = body.data?.[0]?.run_id;
      const run = runId ? (await api<{ data: Run }>("GET", `/v1/runs/${runId}`)).body.data : undefined;
      return run?.steps?.some((step) => step.name === "long-nap" && step.status === "Sleeping") ? true : undefined;
    });
    await send("remote/cancel", { id: "other" });
    const res = await fetch(`${dev.baseUrl}/e/dev`, { method: "POST", body: JSON.stringify({ name: "remote/cancel", data: { id: "c-1" } }) });
    expect(res.status).toBe(200);
    const run = await finished(eventId, "node-app-cancellable");
    expect(run.status).toBe("Cancelled");
    expect(calls.get("after-nap:c-1")).toBeUndefined();
  });

  it("a re-sync with a function removed takes it out of the registry", async () => {
    const smaller = await serveApp(app, app.functions.filter((fn) => !fn.id().endsWith("waiter")));
    try {
      const synced = await api<{ data: { functions: { id: string }[] } }>("POST", "/v1/apps", { url: smaller.url });
      expect(synced.status).toBe(200);
      expect(synced.body.data.functions.map((fn) => fn.id)).not.toContain("node-app-waiter");
      const functions = await api<{ data: { id: string }[] }>("GET", "/v1/functions");
      expect(functions.body.data.map((fn) => fn.id)).not.toContain("node-app-waiter");
    } finally {
      // Back to the full app for the other tests.
      await api("POST", "/v1/apps", { url: served.url });
      await smaller.stop();
    }
  });

  it("a send() the SDK retries after losing the answer is one event and one run (its x-inngest-event-id-seed)", async () => {
    const seeds: (string | null)[] = [];
    const retrying = new Inngest({
      id: "node-app",
      isDev: true,
      baseUrl: dev.baseUrl,
      // The first answer to an event send is lost after Stepflare stored the events: the SDK sends again.
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (!String(input instanceof Request ? input.url : input).includes("/e/")) return response;
        seeds.push(new Headers(init?.headers).get("x-inngest-event-id-seed"));
        if (seeds.length === 1) throw new TypeError("the connection dropped before the answer");
        return response;
      },
    });
    const { ids } = await retrying.send({ name: "remote/multi", data: { tag: "seeded" } });
    expect(seeds).toHaveLength(2);
    expect(seeds[0]).toMatch(/^\d+,/);
    expect(seeds[1]).toBe(seeds[0]);
    const run = await finished(ids[0]!, "node-app-multi-step");
    expect(run.status).toBe("Completed");
    const { body } = await api<{ data: Run[] }>("GET", `/v1/events/${ids[0]}/runs`);
    expect(body.data.filter((entry) => entry.function_id === "node-app-multi-step")).toHaveLength(1);
    expect(calls.get("a:seeded")).toBe(1);
  });

  it("syncs out of band (a PUT to the app, which registers with POST /fn/register), and a bad function fails the sync with status 400", async () => {
    const standalone = new Inngest({ id: "oob-app", isDev: true, baseUrl: dev.baseUrl });
    const good = standalone.createFunction({ id: "ping", triggers: [{ event: "oob/ping" }] }, async () => "pong");
    const bad = standalone.createFunction({ id: "broken", triggers: [{ event: "oob/ping", if: "event.data.x ==" }] }, async () => null);
    const serveOn = async (functions: unknown[]) => {
      const handler = serve({ client: standalone, functions: functions as Parameters<typeof serve>[0]["functions"] });
      const server = http.createServer((req, res) => handler(req, res));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/inngest`, close: () => server.close() };
    };
    const first = await serveOn([good]);
    try {
      // What an Inngest user does after a deploy: PUT the serve URL; the SDK registers out of band.
      const put = await fetch(first.url, { method: "PUT" });
      expect(put.status).toBe(200);
      expect(put.headers.get("x-inngest-sync-kind")).toBe("out_of_band");
      const apps = await api<{ data: { id: string; url: string; functions: { id: string }[] }[] }>("GET", "/v1/apps");
      expect(apps.body.data.find((entry) => entry.id === "oob-app")).toMatchObject({ url: first.url, functions: [{ id: "oob-app-ping" }] });
    } finally {
      first.close();
    }
    const second = await serveOn([good, bad]);
    try {
      // The SDK answers its PUT with the status and error of Stepflare's answer to /fn/register.
      const put = await fetch(second.url, { method: "PUT" });
      expect(put.status).toBe(400);
      expect(((await put.json()) as { message: string }).message).toMatch(/function "oob-app-broken"/);
      const viaApi = await api<{ error: string }>("POST", "/v1/apps", { url: second.url });
      expect(viaApi.status).toBe(502);
      expect(viaApi.body.error).toMatch(/function "oob-app-broken"/);
      // The app keeps the functions of its last good sync.
      const apps = await api<{ data: { id: string; functions: { id: string }[] }[] }>("GET", "/v1/apps");
      expect(apps.body.data.find((entry) => entry.id === "oob-app")?.functions.map((fn) => fn.id)).toEqual(["oob-app-ping"]);
    } finally {
      second.close();
      expect((await api("DELETE", "/v1/apps/oob-app")).status).toBe(200);
    }
  });

  it("refuses a sync whose function id another app has (app \"node\" with \"app-child\" would be node-app's \"child\")", async () => {
    const url = "http://127.0.0.1:9/api/inngest";
    const wire = { id: "node-app-child", name: "child", triggers: [{ event: "x/y" }], steps: { step: { id: "step", name: "step", runtime: { type: "http", url: `${url}?fnId=node-app-child&stepId=step` } } } };
    const res = await fetch(`${dev.baseUrl}/fn/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url, appName: "node", functions: [wire] }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ status: 400, error: 'function "node-app-child": app "node-app" has a function of this id' });
  });

  it("a sync of a URL that answers nothing is a 502 that says why", async () => {
    const res = await api<{ error: string }>("POST", "/v1/apps", { url: "http://127.0.0.1:9/api/inngest" });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatch(/could not reach the app/);
  });
});
