import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "./worker.ts";

// Production mode: STEPFLARE_DEV unset, secrets set (DESIGN "Auth").
const production = { ...env, STEPFLARE_DEV: undefined, STEPFLARE_EVENT_KEYS: "key-one, key-two", STEPFLARE_SIGNING_KEY: "signing-secret" };

function call(path: string, init?: RequestInit): Promise<Response> {
  return Promise.resolve(worker.fetch!(new Request(`http://stepflare.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, production, createExecutionContext()));
}

const event = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "test/auth" }) };

describe("auth outside dev mode", () => {
  it("accepts events only with a listed event key", async () => {
    expect((await call("/e/key-two", event)).status).toBe(200);
    for (const key of ["wrong", "key-one,key-two", "key", "KEY-ONE"]) {
      const response = await call(`/e/${key}`, event);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: "unknown event key" });
    }
  });

  const routes: [string, string][] = [
    ["GET", "/v1/functions"],
    ["GET", "/v1/usage"],
    ["GET", "/v1/events/some-id"],
    ["GET", "/v1/events/some-id/runs"],
    ["GET", "/v1/runs/0123456789abcdef0123456789abcdef"],
    ["DELETE", "/v1/runs/0123456789abcdef0123456789abcdef"],
  ];

  it.each(routes)("refuses %s %s without the signing key, or with a wrong one", async (method, path) => {
    for (const headers of [{} as Record<string, string>, { authorization: "Bearer wrong" }, { authorization: "signing-secret" }, { authorization: "Bearer " }]) {
      const response = await call(path, { method, headers });
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: string };
      expect(body.error).toMatch(/signing key/);
      expect(JSON.stringify(body)).not.toContain("signing-secret");
    }
  });

  it("serves the REST API with the signing key", async () => {
    const response = await call("/v1/functions", { headers: { authorization: "Bearer signing-secret" } });
    expect(response.status).toBe(200);
  });

  it("refuses everything when no keys are configured", async () => {
    const bare = { ...env, STEPFLARE_DEV: undefined };
    const post = await worker.fetch!(new Request("http://stepflare.test/e/anything", event) as Request<unknown, IncomingRequestCfProperties>, bare, createExecutionContext());
    expect(post.status).toBe(401);
    const api = await worker.fetch!(new Request("http://stepflare.test/v1/functions", { headers: { authorization: "Bearer " } }) as Request<unknown, IncomingRequestCfProperties>, bare, createExecutionContext());
    expect(api.status).toBe(401);
  });
});
