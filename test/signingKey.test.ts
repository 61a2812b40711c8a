// The signing key's form (issue 21): exactly the README's two recipes are accepted, since the
// inngest SDK reads a key as hex to hash it into an app's credential and a key that is not hex
// gives a credential other keys give too.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../worker/platform/env.ts";
import { hashedSigningKey } from "../worker/remote/signature.ts";
import worker from "./worker.ts";

/** A signing key as the README's recipe makes one (`openssl rand -hex 32`). */
const SIGNING_KEY = "3f9c0a57d2e14b86a0c9e7f1d3b5a2c48e6f0b1d2c3a4e5f60718293a4b5c6d7";
const ORIGIN = "http://stepflare.test";
const production = { ...env, STEPFLARE_DEV: undefined, STEPFLARE_EVENT_KEYS: "key-one" };

function call(path: string, init: RequestInit, bindings: Env): Promise<Response> {
  return Promise.resolve(worker.fetch!(new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }) as Request<unknown, IncomingRequestCfProperties>, bindings, createExecutionContext()));
}

describe("the signing key's form", () => {
  const withKey = (key: string): Env => ({ ...production, STEPFLARE_SIGNING_KEY: key });
  const refusal = /^STEPFLARE_SIGNING_KEY is not in a form Stepflare accepts: use 64 lowercase hex characters \(`openssl rand -hex 32`\), alone or after Inngest's `signkey-<env>-` prefix/;

  /** Every use of the signing key: an app's call, the API, a page, the login form and its check. */
  async function uses(key: string): Promise<[string, RequestInit][]> {
    const bearer = { authorization: `Bearer ${key}` };
    return [
      ["/fn/register", { method: "POST", headers: { authorization: `Bearer ${await hashedSigningKey(key)}`, "content-type": "application/json" }, body: "{}" }],
      ["/v1/functions", { headers: bearer }],
      ["/runs", { headers: bearer }],
      ["/login", {}],
      ["/login", { method: "POST", headers: { origin: ORIGIN }, body: new URLSearchParams({ key }) }],
    ];
  }

  it("refuses a key that is not hex, whose app credential another key's also passes, with a 503 naming the secret", async () => {
    // The inngest SDK reads a key as hex to hash it: these two give the same bearer.
    const [key, other] = ["my-super-secret-password", "my-other-secret-password!"];
    expect(await hashedSigningKey(other)).toBe(await hashedSigningKey(key));
    const register = await call("/fn/register", { method: "POST", headers: { authorization: `Bearer ${await hashedSigningKey(other)}`, "content-type": "application/json" }, body: "{}" }, withKey(key));
    expect(register.status).toBe(503);
    for (const [path, init] of await uses(key)) {
      const response = await call(path, init, withKey(key));
      expect(response.status, `${init.method ?? "GET"} ${path}`).toBe(503);
      const text = await response.text();
      expect(text).not.toContain(key);
      expect((JSON.parse(text) as { error: string }).error).toMatch(refusal);
    }
  });

  it.each([
    ["a password", "signing-secret"],
    ["upper-case hex", SIGNING_KEY.toUpperCase()],
    ["63 hex characters", SIGNING_KEY.slice(1)],
    ["65 hex characters", `${SIGNING_KEY}0`],
    ["a space before it", ` ${SIGNING_KEY}`],
    ["a newline after it", `${SIGNING_KEY}\n`],
    ["Inngest's prefix before a password", "signkey-prod-my-super-secret-password"],
    ["Inngest's prefix before 63 hex characters", `signkey-prod-${SIGNING_KEY.slice(1)}`],
    ["a prefix with no environment", `signkey--${SIGNING_KEY}`],
  ])("refuses %s", async (_what, key) => {
    const response = await call("/v1/functions", {}, withKey(key));
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: string }).error).toMatch(refusal);
  });

  it.each([
    ["`openssl rand -hex 32`", SIGNING_KEY],
    ["`signkey-prod-` and 64 hex characters", `signkey-prod-${SIGNING_KEY}`],
    ["`signkey-test-` and 64 hex characters", `signkey-test-${SIGNING_KEY}`],
  ])("accepts the README's form %s for every use", async (_what, key) => {
    for (const [path, init] of await uses(key)) {
      const response = await call(path, init, withKey(key));
      expect([401, 503], `${init.method ?? "GET"} ${path}`).not.toContain(response.status);
      await response.body?.cancel();
    }
  });
});
