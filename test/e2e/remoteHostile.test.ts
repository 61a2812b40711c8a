/**
 * "Bring your Inngest app" on a network that is not always the SDK's, under `wrangler dev`: an app
 * on `inngest/node` behind a front this test controls, which may answer a call with an HTML page
 * or a redirect in the SDK's place; an address that never answers a sync; a step too big to keep
 * and a cancel while the SDK checkpoints; the SDK's Date timeouts; a race-mode group. Step bodies
 * that must wait for the test wait on gates the test opens, never on time.
 */
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Inngest } from "inngest";
import { serve } from "inngest/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stepflareApi, type RunDetail } from "./stepflareApi.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

// A call answered by something else is retried after Inngest's backoff: 15 s and up to 30 s of jitter.
const RUN_TIMEOUT_MS = 90_000;
const MiB = 1024 * 1024;

let dev: DevServer;
let api: ReturnType<typeof stepflareApi>["api"];
let finished: ReturnType<typeof stepflareApi>["finished"];
let front: Awaited<ReturnType<typeof serveFront>>;

/** How often each step body (by name and tag) ran. */
const bodies = new Map<string, number>();
const ran = (name: string) => bodies.set(name, (bodies.get(name) ?? 0) + 1);

/** Gates step bodies wait on, opened by the test: a step that "takes long" takes exactly until the test says. */
const gates = new Map<string, { promise: Promise<void>; open(): void }>();
function gate(name: string) {
  let entry = gates.get(name);
  if (!entry) {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    entry = { promise, open };
    gates.set(name, entry);
  }
  return entry;
}

function createHostileApp(baseUrl: string) {
  const inngest = new Inngest({ id: "hostile-app", isDev: true, baseUrl });
  // Two functions alike: the front answers the first call to each in the SDK's place, each its own way.
  const plain = (id: string) =>
    inngest.createFunction({ id, triggers: [{ event: `hostile/${id}` }] }, async ({ event, step }) => {
      const n = await step.run("only", () => (ran(`${id}:${event.data.tag}`), event.data.n as number));
      return { n };
    });
  const big = inngest.createFunction({ id: "big", retries: 0, triggers: [{ event: "hostile/big" }] }, async ({ event, step }) => {
    await step.run("small", () => (ran(`small:${event.data.tag}`), 1));
    await step.run("huge", () => (ran(`huge:${event.data.tag}`), "x".repeat(5 * MiB)));
    await step.run("after", () => (ran(`after:${event.data.tag}`), 2));
    return "done";
  });
  // Six steps; the third waits for the test, which cancels the run meanwhile.
  const six = (id: string, checkpointing: boolean) =>
    inngest.createFunction({ id, checkpointing, triggers: [{ event: `hostile/${id}` }] }, async ({ event, step }) => {
      for (let i = 1; i <= 6; i++) {
        await step.run(`s${i}`, async () => {
          ran(`${id}:${i}:${event.data.tag}`);
          if (i === 3) await gate(`${id}:${event.data.tag}`).promise;
          return i;
        });
      }
    });
  const waiter = inngest.createFunction({ id: "dated-wait", triggers: [{ event: "hostile/dated-wait" }] }, async ({ event, step }) => {
    const reply = await step.waitForEvent("reply", { event: "hostile/reply", match: "data.tag", timeout: new Date(event.data.until as string) });
    return { reply: reply?.data.answer ?? null };
  });
  const child = inngest.createFunction({ id: "slow-child", triggers: [{ event: "hostile/slow-child" }] }, async ({ event, step }) => {
    return step.run("slow", async () => (await gate(`child:${event.data.tag}`).promise, `child ${event.data.tag}`));
  });
  const parent = inngest.createFunction({ id: "dated-parent", triggers: [{ event: "hostile/dated-parent" }] }, async ({ event, step }) => {
    return step.invoke("call-child", { function: child, data: { tag: event.data.tag }, timeout: new Date(event.data.until as string) });
  });
  const race = inngest.createFunction({ id: "race", triggers: [{ event: "hostile/race" }] }, async ({ event, step, group }) => {
    const tag = event.data.tag as string;
    const winner = await group.parallel({ mode: "race" }, () =>
      Promise.race([step.run("fast", () => (ran(`fast:${tag}`), "fast")), step.run("slow", async () => (await gate(`slow:${tag}`).promise, ran(`slow:${tag}`), "slow"))]),
    );
    return step.run("after", () => (ran(`after-race:${tag}`), `after ${winner}`));
  });
  return { inngest, functions: [plain("html-victim"), plain("redirect-victim"), big, six("six", true), six("six-uncheckpointed", false), waiter, child, parent, race] };
}

/**
 * The app behind a front: `/api/inngest` is what Stepflare syncs and calls; the front passes each
 * request to the SDK unless a plan says otherwise for the function called (its first call only).
 * `/real/api/inngest` is the SDK itself, where the front's redirect points. `answers` logs what
 * the front answered: `<method> <status> <fnId>`.
 */
async function serveFront(app: ReturnType<typeof createHostileApp>) {
  const handler = serve({ client: app.inngest, functions: app.functions });
  const plans = new Map<string, "html" | "redirect">();
  const answers: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://front");
    const fnId = url.searchParams.get("fnId") ?? "";
    res.on("finish", () => answers.push(`${req.method} ${res.statusCode} ${fnId}`));
    const plan = req.method === "POST" ? plans.get(fnId) : undefined;
    if (plan) plans.delete(fnId);
    if (plan === "html") {
      // A maintenance page: 200, HTML, from something that is not the SDK.
      res.writeHead(200, { "content-type": "text/html" });
      return res.end("<!doctype html><h1>Down for maintenance</h1>");
    }
    if (plan === "redirect") {
      res.writeHead(301, { location: `/real${url.pathname}${url.search}` });
      return res.end();
    }
    // An address the app moved from.
    if (url.pathname.startsWith("/moved/")) {
      res.writeHead(301, { location: `${url.pathname.slice("/moved".length)}${url.search}` });
      return res.end();
    }
    if (url.pathname.startsWith("/api/inngest") || url.pathname.startsWith("/real/api/inngest")) return handler(req, res);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/api/inngest`,
    origin,
    answers,
    plans,
    stop: () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections())),
  };
}

let app: ReturnType<typeof createHostileApp>;

async function send(name: string, data: Record<string, unknown>): Promise<string> {
  const { ids } = await app.inngest.send({ name, data });
  return ids[0]!;
}

/** The run event `eventId` started for `functionId`, as it is now (with its steps). */
async function runOf(eventId: string, functionId: string): Promise<RunDetail | undefined> {
  const { body } = await api<{ data: RunDetail[] }>("GET", `/v1/events/${encodeURIComponent(eventId)}/runs`);
  const run = body.data?.find((candidate) => candidate.function_id === functionId);
  return run ? (await api<{ data: RunDetail }>("GET", `/v1/runs/${run.run_id}`)).body.data : undefined;
}

/** The step `name` of that run once it is stored. */
function stepOnceStored(eventId: string, functionId: string, name: string) {
  return waitFor(`step ${name} of ${functionId}`, RUN_TIMEOUT_MS, dev, async () => (await runOf(eventId, functionId))?.steps.find((step) => step.name === name) as (RunDetail["steps"][number] & { wake_at: string | null }) | undefined);
}

beforeAll(async () => {
  dev = await startDevServer(["wrangler.toml"], "/v1/functions");
  ({ api, finished } = stepflareApi(dev, { runTimeoutMs: RUN_TIMEOUT_MS }));
  app = createHostileApp(dev.baseUrl);
  front = await serveFront(app);
  const synced = await api<{ data: { id: string } }>("POST", "/v1/apps", { url: front.url });
  expect(synced.status, JSON.stringify(synced.body)).toBe(200);
});

afterAll(async () => {
  for (const entry of gates.values()) entry.open();
  await front?.stop();
  await dev?.stop();
});

describe("only the SDK's answer moves a run", () => {
  it("an HTML page answered with 200, or a redirect (which fetch would follow as a GET), is a failed call: the run ends with the app's own output", async () => {
    front.plans.set("hostile-app-html-victim", "html");
    front.plans.set("hostile-app-redirect-victim", "redirect");
    const [htmlEvent, redirectEvent] = await Promise.all([send("hostile/html-victim", { tag: "h", n: 1 }), send("hostile/redirect-victim", { tag: "r", n: 2 })]);
    const [html, redirect] = await Promise.all([finished(htmlEvent, "hostile-app-html-victim"), finished(redirectEvent, "hostile-app-redirect-victim")]);
    expect(front.answers).toContain("POST 200 hostile-app-html-victim");
    expect(front.answers).toContain("POST 301 hostile-app-redirect-victim");
    // Followed, the redirect would have reached the SDK as a GET, whose answer is its status document.
    expect(front.answers.filter((answer) => answer.startsWith("GET "))).toEqual([]);
    expect([html.status, html.output]).toEqual(["Completed", { n: 1 }]);
    expect([redirect.status, redirect.output]).toEqual(["Completed", { n: 2 }]);
    expect([bodies.get("html-victim:h"), bodies.get("redirect-victim:r")]).toEqual([1, 1]);
  });
});

describe("syncs with a bound", () => {
  it("a sync to an address that never answers is a 502 after 20 seconds, naming the limit", async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/inngest`;
      const res = await fetch(`${dev.baseUrl}/v1/apps`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url }), signal: AbortSignal.timeout(60_000) });
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: string }).error).toMatch(/did not answer the sync within 20 seconds/);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 70_000);

  it("a sync to an address that redirects fails, naming the redirect: calls there would all be redirected", async () => {
    try {
      const res = await api<{ error: string }>("POST", "/v1/apps", { url: `${front.origin}/moved/api/inngest` });
      expect(res.status).toBe(502);
      expect(res.body.error).toMatch(/redirect/);
    } finally {
      // Had it synced, the app would be called at the old address: back to the front for the other tests.
      await api("POST", "/v1/apps", { url: front.url });
    }
  });
});

describe("checkpoints the run does not take stop the SDK", () => {
  it("a checkpointed step refused for its size (5 MiB) fails the run, and the step after it never runs", async () => {
    const eventId = await send("hostile/big", { tag: "b1" });
    const run = await finished(eventId, "hostile-app-big");
    expect(run.status).toBe("Failed");
    expect(run.error?.message).toMatch(/4 MiB/);
    expect(run.steps.find((step) => step.name === "huge")).toMatchObject({ status: "Failed" });
    expect([bodies.get("small:b1"), bodies.get("huge:b1"), bodies.get("after:b1")]).toEqual([1, 1, undefined]);
  });

  it.each(["six", "six-uncheckpointed"])("a run (%s) cancelled while its third step runs: no later step body runs", async (id) => {
    const tag = `c-${id}`;
    const eventId = await send(`hostile/${id}`, { tag });
    await waitFor("the third step to start", RUN_TIMEOUT_MS, dev, async () => (bodies.get(`${id}:3:${tag}`) ? true : undefined));
    const run = await runOf(eventId, `hostile-app-${id}`);
    expect((await api("DELETE", `/v1/runs/${run!.run_id}`)).status).toBe(200);
    const answered = front.answers.length;
    // The step ends; the SDK learns of the cancel (at its checkpoint, or from Stepflare calling no more) and answers its call.
    gate(`${id}:${tag}`).open();
    await waitFor("the app's call to end", RUN_TIMEOUT_MS, dev, async () => (front.answers.slice(answered).some((answer) => answer.startsWith("POST ")) ? true : undefined));
    expect((await finished(eventId, `hostile-app-${id}`)).status).toBe("Cancelled");
    expect([4, 5, 6].map((i) => bodies.get(`${id}:${i}:${tag}`))).toEqual([undefined, undefined, undefined]);
  });
});

describe("what the SDK writes", () => {
  it("waitForEvent with a Date timeout waits until that time (the SDK sends it as an ISO time)", async () => {
    const until = new Date(Date.now() + 60_000).toISOString();
    const eventId = await send("hostile/dated-wait", { tag: "w1", until });
    const reply = await stepOnceStored(eventId, "hostile-app-dated-wait", "reply");
    expect(reply).toMatchObject({ status: "Waiting", wake_at: until });
    await send("hostile/reply", { tag: "w1", answer: 42 });
    const run = await finished(eventId, "hostile-app-dated-wait");
    expect(run.output).toEqual({ reply: 42 });
  });

  it("invoke with a Date timeout waits for the child until that time", async () => {
    const until = new Date(Date.now() + 60_000).toISOString();
    const eventId = await send("hostile/dated-parent", { tag: "i1", until });
    const invoked = await stepOnceStored(eventId, "hostile-app-dated-parent", "call-child");
    expect(invoked).toMatchObject({ status: "Waiting", wake_at: until });
    gate("child:i1").open();
    const run = await finished(eventId, "hostile-app-dated-parent");
    expect([run.status, run.output]).toEqual(["Completed", "child i1"]);
  });

  it("a race-mode group: the step after it runs once the first branch ends, while the other still runs", async () => {
    const eventId = await send("hostile/race", { tag: "r1" });
    // The slow branch ends only when the test opens its gate, after the step that follows the race has run.
    await waitFor("the step after the race", RUN_TIMEOUT_MS, dev, async () => (bodies.get("after-race:r1") ? true : undefined));
    expect(bodies.get("slow:r1")).toBeUndefined();
    gate("slow:r1").open();
    const run = await finished(eventId, "hostile-app-race");
    expect([run.status, run.output]).toEqual(["Completed", "after fast"]);
    expect(bodies.get("slow:r1")).toBe(1);
  });
});
