import { afterEach, describe, expect, it, vi } from "vitest";
import { fetch as durableFetch, rebuildResponse } from "./fetch.ts";
import { TestRun } from "./testing.ts";

/** Stubs the global fetch with a server that counts requests and echoes them back. */
function stubServer() {
  const server = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const body = { method: request.method, url: request.url, sent: request.method === "GET" ? null : await request.text(), n: server.mock.calls.length };
    return Response.json(body, { status: 201, statusText: "Created", headers: { "x-echo": "yes" } });
  });
  vi.stubGlobal("fetch", server);
  return server;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("step.fetch", () => {
  it("fetches once: a replay after a sleep gets the memoized response, rebuilt, without a second request", async () => {
    const server = stubServer();
    const run = new TestRun(async ({ step }) => {
      const res = await step.fetch("https://api.test/rates?c=eur", { method: "POST", body: "hello" });
      await step.sleep("nap", "1m");
      return { status: res.status, statusText: res.statusText, echo: res.headers.get("x-echo"), body: await res.json() };
    });
    expect(await run.invoke()).toMatchObject({ type: "suspended" });
    run.clock.advance(60_000);
    const outcome = await run.invoke();
    expect(outcome).toEqual({
      type: "completed",
      output: { status: 201, statusText: "Created", echo: "yes", body: { method: "POST", url: "https://api.test/rates?c=eur", sent: "hello", n: 1 } },
    });
    expect(server).toHaveBeenCalledTimes(1);
    expect(run.step("step.fetch: api.test")).toMatchObject({ kind: "fetch", status: "completed", output: { status: 201, headers: { "x-echo": "yes" } } });
  });

  it("names repeated requests to one host step.fetch: <host>:1, :2, and runs them side by side", async () => {
    const server = stubServer();
    const run = new TestRun(async ({ step }) => {
      const responses = await Promise.all(["a", "b", "c"].map((p) => step.fetch(`https://api.test/${p}`)));
      return Promise.all(responses.map(async (r) => ((await r.json()) as { url: string }).url));
    });
    expect(await run.drive()).toEqual({ type: "completed", output: ["https://api.test/a", "https://api.test/b", "https://api.test/c"] });
    expect(server).toHaveBeenCalledTimes(3);
    expect(run.saved.map((s) => s.name).sort()).toEqual(["step.fetch: api.test", "step.fetch: api.test:1", "step.fetch: api.test:2"]);
  });

  it("retries a request that fails (the network, not an HTTP status) as a step, and returns an HTTP error as a response", async () => {
    let calls = 0;
    vi.stubGlobal("fetch", async () => {
      calls++;
      if (calls === 1) throw new TypeError("network connection lost");
      return new Response("down", { status: 503 });
    });
    const run = new TestRun(async ({ step }) => {
      const res = await step.fetch(new Request("https://api.test/x", { method: "PUT", body: "payload" }));
      return { status: res.status, text: await res.text() };
    });
    expect(await run.drive()).toEqual({ type: "completed", output: { status: 503, text: "down" } });
    expect(calls).toBe(2);
    expect(run.step("step.fetch: api.test")).toMatchObject({ attempts: 2, failedAttempts: [{ error: { message: "network connection lost" } }] });
  });

  it("inside a step body is the plain fallback: no step of its own, run again with its step", async () => {
    const server = stubServer();
    const run = new TestRun(async ({ step }) => step.run("inside", async () => (await step.fetch("https://api.test/in")).status));
    expect(await run.drive()).toEqual({ type: "completed", output: 201 });
    expect(server).toHaveBeenCalledTimes(1);
    expect(run.saved.map((s) => s.name)).toEqual(["inside"]);
    const refusing = new TestRun(async ({ step }) => {
      step.fetch.config({ fallback: undefined });
      return step.run("inside", () => step.fetch("https://api.test/in").then(() => "fetched"));
    }, { retries: 0 });
    expect(await refusing.drive()).toMatchObject({ type: "failed", error: { message: expect.stringContaining("inside a step body and has no fallback set") } });
  });

  it("refuses a relative URL for good", async () => {
    const run = new TestRun(async ({ step }) => step.fetch("/relative"));
    expect(await run.drive()).toMatchObject({ type: "failed", error: { name: "NonRetriableError", message: expect.stringContaining("give it an absolute URL") } });
  });
});

describe("the fetch export", () => {
  it("is step.fetch in a run's own code, and the global fetch outside any run", async () => {
    const server = stubServer();
    const run = new TestRun(async () => {
      // A library given `fetch` calls it from deep inside the handler.
      const library = { get: (url: string) => durableFetch(url).then((r) => r.json() as Promise<{ n: number }>) };
      return (await library.get("https://lib.test/a")).n;
    });
    expect(await run.drive()).toEqual({ type: "completed", output: 1 });
    expect(run.step("step.fetch: lib.test")).toMatchObject({ kind: "fetch", status: "completed" });
    expect((await durableFetch("https://lib.test/outside")).status).toBe(201);
    expect(server).toHaveBeenCalledTimes(2);
  });
});

describe("rebuildResponse", () => {
  it("gives statuses without a body no body", async () => {
    const res = rebuildResponse({ status: 204, statusText: "No Content", headers: { etag: "x" }, body: "" });
    expect([res.status, res.headers.get("etag"), res.body]).toEqual([204, "x", null]);
  });
});
