/**
 * The service binding from a second Worker (issue 11): `wrangler dev` runs the shop's own Worker
 * (examples/shop-frontend, on the port) beside Stepflare, as the README shows, and the shop reaches
 * Stepflare only through its STEPFLARE binding to the StepflareService entrypoint.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

let dev: DevServer;

beforeAll(async () => {
  dev = await startDevServer(["examples/shop-frontend/wrangler.toml", "wrangler.toml"], "/runs/none");
});

afterAll(async () => {
  await dev?.stop();
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${dev.baseUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("a second Worker with a service binding", () => {
  it("invokes a function and reads its run through the binding", async () => {
    const started = await call("POST", "/greetings", { name: "Binding" });
    expect(started).toMatchObject({ status: 200, body: { status: 200 } });
    const runId = started.body.runId as string;
    const run = await waitFor(`run ${runId}`, 30_000, dev, async () => {
      const { status, body } = await call("GET", `/runs/${runId}`);
      const data = body.data as { status: string } | undefined;
      return status === 200 && data?.status === "Completed" ? data : undefined;
    });
    expect(run).toMatchObject({ function_id: "hello", output: { greeting: "Hello, Binding!" } });
  });

  it("sends events with the event API's validation and answers", async () => {
    expect(await call("POST", "/orders", { productId: "p-1", imageURLs: ["a.png"] })).toMatchObject({ status: 200, body: { ids: [expect.any(String)], status: 200 } });
    expect(await call("POST", "/orders", "not an object")).toEqual({
      status: 400,
      body: { error: "invalid event at data: Invalid input: expected record, received string", status: 400, path: "data" },
    });
    expect((await call("GET", "/runs/0123456789abcdef0123456789abcdef")).status).toBe(404);
  });
});
