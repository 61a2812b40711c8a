/**
 * "Bring your Inngest app" outside dev mode: the app on the `inngest` SDK in cloud mode with a
 * signing key, Stepflare closed with the same key as `STEPFLARE_SIGNING_KEY`. Every request to the
 * app is signed (`x-inngest-signature`), every call from it carries the hashed key; a wrong key on
 * either side gets a 401 and runs nothing; an answer changed on the way fails its signature check.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { calls, createApp, serveApp } from "./remoteApp.ts";
import { stepflareApi } from "./stepflareApi.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const SIGNING_KEY = `signkey-test-${"7a".repeat(32)}`;
const OTHER_KEY = `signkey-test-${"3c".repeat(32)}`;
const EVENT_KEY = "ek-signed-test";

let dev: DevServer;

let api: ReturnType<typeof stepflareApi>["api"];

beforeAll(async () => {
  dev = await startDevServer(["wrangler.toml"], "/v1/openapi.json", { devMode: false, vars: { STEPFLARE_SIGNING_KEY: SIGNING_KEY, STEPFLARE_EVENT_KEYS: EVENT_KEY } });
  ({ api } = stepflareApi(dev, { bearer: SIGNING_KEY }));
});

afterAll(async () => {
  await dev?.stop();
});

describe("an app in cloud mode, with signatures", () => {
  it("syncs with signed requests and runs its functions; events go in with the event key", async () => {
    const app = createApp(dev.baseUrl, { id: "signed-app", signingKey: SIGNING_KEY, eventKey: EVENT_KEY });
    const served = await serveApp(app);
    try {
      const synced = await api<{ data: { id: string } }>("POST", "/v1/apps", { url: served.url });
      expect(synced.status, JSON.stringify(synced.body)).toBe(200);
      expect(synced.body.data.id).toBe("signed-app");
      const { ids } = await app.inngest.send({ name: "remote/multi", data: { tag: "signed" } });
      const run = await waitFor("the signed app's run", 45_000, dev, async () => {
        const { body } = await api<{ data: { run_id: string; status: string }[] }>("GET", `/v1/events/${ids[0]}/runs`);
        const found = body.data?.find((entry) => entry.status === "Completed");
        return found ? (await api<{ data: { output: unknown } }>("GET", `/v1/runs/${found.run_id}`)).body.data : undefined;
      });
      expect(run.output).toEqual({ a: "a-signed", b: "b", c: "c" });
      expect(calls.get("a:signed")).toBe(1);
      // Every call reached the SDK's handler past its signature check.
      expect(served.answers.filter((answer) => answer.endsWith(" 401"))).toEqual([]);
    } finally {
      await served.stop();
    }
  });

  it("an app with another signing key refuses the sync (401): the sync fails and registers nothing", async () => {
    const app = createApp(dev.baseUrl, { id: "wrong-key-app", signingKey: OTHER_KEY, eventKey: EVENT_KEY });
    const served = await serveApp(app);
    try {
      const synced = await api<{ error: string }>("POST", "/v1/apps", { url: served.url });
      expect(synced.status).toBe(502);
      expect(synced.body.error).toMatch(/401/);
      expect(served.answers).toEqual(["PUT 401"]);
      const apps = await api<{ data: { id: string }[] }>("GET", "/v1/apps");
      expect(apps.body.data.map((entry) => entry.id)).not.toContain("wrong-key-app");
    } finally {
      await served.stop();
    }
  });

  it("POST /fn/register with a wrong key is a 401 and stores nothing", async () => {
    const body = { url: "http://127.0.0.1:1/api/inngest", appName: "intruder", functions: [] };
    for (const authorization of ["Bearer nope", `Bearer ${SIGNING_KEY}-not-hashed`, ""]) {
      const res = await fetch(`${dev.baseUrl}/fn/register`, { method: "POST", headers: { "content-type": "application/json", authorization }, body: JSON.stringify(body) });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ status: 401 });
    }
    const apps = await api<{ data: { id: string }[] }>("GET", "/v1/apps");
    expect(apps.body.data.map((entry) => entry.id)).not.toContain("intruder");
  });

  it("a call the app cannot verify (its key changed since the sync) is a 401 and runs no step", async () => {
    const good = createApp(dev.baseUrl, { id: "rotated-app", signingKey: SIGNING_KEY, eventKey: EVENT_KEY });
    const first = await serveApp(good);
    const port = Number(new URL(first.url).port);
    expect((await api("POST", "/v1/apps", { url: first.url })).status).toBe(200);
    await first.stop();
    // The same app at the same URL, now with a key Stepflare does not have.
    const rotated = await serveApp(createApp(dev.baseUrl, { id: "rotated-app", signingKey: OTHER_KEY, eventKey: EVENT_KEY }), undefined, port);
    try {
      const { ids } = await good.inngest.send({ name: "remote/multi", data: { tag: "rotated" } });
      await waitFor("the run's call to be refused", 30_000, dev, async () => (rotated.answers.includes("POST 401") ? true : undefined));
      expect(calls.get("a:rotated")).toBeUndefined();
      const { body } = await api<{ data: { status: string }[] }>("GET", `/v1/events/${ids[0]}/runs`);
      expect(body.data.map((entry) => entry.status)).not.toContain("Completed");
    } finally {
      await rotated.stop();
    }
  });

  it("an answer changed on the way (its signature no longer matches) is a failed call: the run ends with the app's own output", async () => {
    const app = createApp(dev.baseUrl, { id: "tampered-app", signingKey: SIGNING_KEY, eventKey: EVENT_KEY });
    const served = await serveApp(app);
    // A proxy in front of the app that, once, swaps the SDK's answer to a call for one that ends the run, keeping its headers.
    let tamper = true;
    const forged: string[] = [];
    const proxy = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => name !== "host" && name !== "content-length")) as Record<string, string>;
      const answer = await fetch(new URL(req.url ?? "/", served.url), { method: req.method ?? "GET", headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      let body = Buffer.from(await answer.arrayBuffer());
      if (tamper && req.method === "POST" && answer.ok) {
        tamper = false;
        body = Buffer.from(JSON.stringify(answer.status === 206 ? [{ id: "forged", op: "RunComplete", data: { forged: true } }] : { forged: true }));
        forged.push(`${answer.status}`);
      }
      const kept = [...answer.headers].filter(([name]) => !["content-length", "content-encoding", "transfer-encoding", "connection"].includes(name));
      res.writeHead(answer.status, Object.fromEntries(kept));
      res.end(body);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/api/inngest`;
      const synced = await api<{ data: { id: string } }>("POST", "/v1/apps", { url: proxyUrl });
      expect(synced.status, JSON.stringify(synced.body)).toBe(200);
      const { ids } = await app.inngest.send({ name: "remote/child", data: { n: 5 } });
      // A call answered by something else is retried after Inngest's backoff: 15 s and up to 30 s of jitter.
      const run = await waitFor("the tampered app's run", 90_000, dev, async () => {
        const { body } = await api<{ data: { run_id: string; function_id: string; status: string }[] }>("GET", `/v1/events/${ids[0]}/runs`);
        const found = body.data?.find((entry) => entry.function_id === "tampered-app-child" && ["Completed", "Failed"].includes(entry.status));
        return found ? (await api<{ data: { status: string; output: unknown } }>("GET", `/v1/runs/${found.run_id}`)).body.data : undefined;
      });
      expect(forged).toHaveLength(1);
      expect([run.status, run.output]).toEqual(["Completed", { doubled: 10 }]);
    } finally {
      await new Promise<void>((resolve) => (proxy.close(() => resolve()), proxy.closeAllConnections()));
      await served.stop();
    }
  }, 120_000);
});
