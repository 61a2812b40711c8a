import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../worker/platform/env.ts";
import { CONTENT_SECURITY_POLICY } from "../worker/routes/pageHeaders.ts";
import { API_ROUTES } from "../worker/routes/api/openapi.ts";
import { safeNext } from "../worker/routes/login.tsx";
import { SESSION_TTL_MS, signSession } from "../worker/routes/session.ts";
import worker from "./worker.ts";

/** A signing key as the README's recipe makes one (`openssl rand -hex 32`). */
const SIGNING_KEY = "3f9c0a57d2e14b86a0c9e7f1d3b5a2c48e6f0b1d2c3a4e5f60718293a4b5c6d7";

// The vitest project runs in dev mode (vitest.config.ts); these envs turn it off (DESIGN "Auth").
const production = { ...env, STEPFLARE_DEV: undefined, STEPFLARE_EVENT_KEYS: "key-one, key-two", STEPFLARE_SIGNING_KEY: SIGNING_KEY };
const dev = { ...env, STEPFLARE_DEV: "1", STEPFLARE_EVENT_KEYS: undefined, STEPFLARE_SIGNING_KEY: undefined };

const ORIGIN = "http://stepflare.test";
const SECRETS = ["key-one", "key-two", SIGNING_KEY];

function call(path: string, init?: RequestInit, bindings: Env = production): Promise<Response> {
  return Promise.resolve(worker.fetch!(new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }) as Request<unknown, IncomingRequestCfProperties>, bindings, createExecutionContext()));
}

const event = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "test/auth" }) };
const dashboardPaths = ["/", "/runs", "/runs/0123456789abcdef0123456789abcdef", "/events", "/events/some-id", "/apps"];

/** Logs in with the form and answers the session cookie, as `name=value`. */
async function logIn(bindings: Env = production): Promise<string> {
  const response = await call("/login", { method: "POST", headers: { origin: ORIGIN }, body: new URLSearchParams({ key: SIGNING_KEY, next: "/runs" }) }, bindings);
  expect(response.status).toBe(303);
  return response.headers.get("set-cookie")!.split(";")[0]!;
}

async function expectNothingRevealed(response: Response): Promise<{ error: string }> {
  expect(response.headers.get("content-type")).toMatch(/application\/json/);
  const text = await response.text();
  for (const secret of SECRETS) expect(text).not.toContain(secret);
  return JSON.parse(text) as { error: string };
}

describe("auth outside dev mode", () => {
  it("accepts events only with a listed event key", async () => {
    expect((await call("/e/key-two", event)).status).toBe(200);
    for (const key of ["wrong", "key-one,key-two", "key", "KEY-ONE", SIGNING_KEY]) {
      const response = await call(`/e/${key}`, event);
      expect(response.status).toBe(401);
      expect(await expectNothingRevealed(response)).toEqual({ error: "unknown event key" });
    }
  });

  it("takes events from other origins with a key: the key, not a cookie, is the credential", async () => {
    expect((await call("/e/key-one", { ...event, headers: { ...event.headers, origin: "https://shop.example" } })).status).toBe(200);
  });

  const routes: [string, string][] = [
    ["GET", "/v1/functions"],
    ["GET", "/v1/usage"],
    ["GET", "/v1/events/some-id"],
    ["GET", "/v1/events/some-id/runs"],
    ["GET", "/v1/runs/0123456789abcdef0123456789abcdef"],
    ["DELETE", "/v1/runs/0123456789abcdef0123456789abcdef"],
    ["GET", "/v1/dev/faults"],
  ];

  it.each(routes)("refuses %s %s without the signing key, or with a wrong one", async (method, path) => {
    for (const headers of [{} as Record<string, string>, { authorization: "Bearer wrong" }, { authorization: SIGNING_KEY }, { authorization: "Bearer " }, { authorization: "Bearer key-one" }]) {
      const response = await call(path, { method, headers });
      expect(response.status).toBe(401);
      expect((await expectNothingRevealed(response)).error).toMatch(/signing key/);
    }
  });

  it("serves the REST API with the signing key", async () => {
    expect((await call("/v1/functions", { headers: { authorization: `Bearer ${SIGNING_KEY}` } })).status).toBe(200);
    // The dev routes stay hidden even then.
    expect((await call("/v1/dev/faults", { headers: { authorization: `Bearer ${SIGNING_KEY}` } })).status).toBe(404);
  });
});

describe("a production Worker missing its secrets", () => {
  const noSigningKey = { ...production, STEPFLARE_SIGNING_KEY: undefined };

  it.each(["/v1/functions", "/v1/usage", ...dashboardPaths, "/login"])("refuses GET %s, naming STEPFLARE_SIGNING_KEY", async (path) => {
    for (const headers of [{} as Record<string, string>, { authorization: "Bearer " }, { authorization: "Bearer undefined" }]) {
      const response = await call(path, { headers }, noSigningKey);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ error: "STEPFLARE_SIGNING_KEY is not set: run `wrangler secret put STEPFLARE_SIGNING_KEY`" });
    }
  });

  it("refuses a login and a write, naming STEPFLARE_SIGNING_KEY", async () => {
    const login = await call("/login", { method: "POST", body: new URLSearchParams({ key: "" }) }, noSigningKey);
    expect(login.status).toBe(503);
    expect(login.headers.get("set-cookie")).toBeNull();
    expect((await call("/v1/functions/hello/pause", { method: "POST" }, noSigningKey)).status).toBe(503);
  });

  it.each([undefined, "", " , "])("refuses every event when STEPFLARE_EVENT_KEYS is %j, naming it", async (keys) => {
    for (const key of ["anything", "undefined", ""]) {
      const response = await call(`/e/${key}`, event, { ...production, STEPFLARE_EVENT_KEYS: keys });
      expect(response.status, key).toBe(key === "" ? 404 : 503);
      if (key !== "") expect(await response.json()).toEqual({ error: "STEPFLARE_EVENT_KEYS is not set: run `wrangler secret put STEPFLARE_EVENT_KEYS`" });
    }
  });

  it("never opens when both are missing", async () => {
    const bare = { ...env, STEPFLARE_DEV: undefined, STEPFLARE_EVENT_KEYS: undefined, STEPFLARE_SIGNING_KEY: undefined };
    expect((await call("/e/anything", event, bare)).status).toBe(503);
    expect((await call("/v1/functions", { headers: { authorization: "Bearer " } }, bare)).status).toBe(503);
    expect((await call("/runs", {}, bare)).status).toBe(503);
  });
});

describe("the dashboard's login", () => {
  it.each(dashboardPaths)("sends GET %s to the login page without a session, keeping where it was", async (path) => {
    const response = await call(`${path}?status=Failed`);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe(`/login?next=${encodeURIComponent(`${path}?status=Failed`)}`);
    expect(response.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
  });

  it("refuses a page write without a session", async () => {
    const response = await call("/runs/0123456789abcdef0123456789abcdef", { method: "POST", headers: { origin: ORIGIN } });
    expect(response.status).toBe(401);
    await expectNothingRevealed(response);
  });

  it("lets the bearer through to the pages", async () => {
    // The page asks the API in process with the same bearer, so it shows the runs rather than a 401.
    const page = await call("/runs", { headers: { authorization: `Bearer ${SIGNING_KEY}` } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<h1>Runs</h1>");
  });

  it("sends the login page with a strict CSP, nosniff and same-origin referrers", async () => {
    const response = await call("/login?next=%2Fruns%3Fa%3D1%26b%3D2");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/text\/html/);
    expect(response.headers.get("content-security-policy")).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("referrer-policy")).toBe("same-origin");
    const page = await response.text();
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<form method="post" action="/login">');
    // The value from the URL is escaped into the attribute.
    expect(page).toContain('name="next" value="/runs?a=1&amp;b=2"');
    for (const secret of SECRETS) expect(page).not.toContain(secret);
  });

  it("sets an HttpOnly, SameSite=Strict, Secure session cookie of 12 h that is not the key, and goes on to next", async () => {
    const response = await call("/login", { method: "POST", headers: { origin: ORIGIN }, body: new URLSearchParams({ key: SIGNING_KEY, next: "/runs?status=Failed" }) });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/runs?status=Failed");
    const cookie = response.headers.get("set-cookie")!;
    const [pair, ...attributes] = cookie.split(/;\s*/);
    expect(pair).toMatch(/^stepflare_session=[0-9]+\.[A-Za-z0-9_-]{43}$/);
    expect(cookie).not.toContain(SIGNING_KEY);
    expect(attributes).toEqual(expect.arrayContaining(["HttpOnly", "SameSite=Strict", "Secure", "Path=/", `Max-Age=${SESSION_TTL_MS / 1000}`]));
  });

  it("serves the API and the pages to the session cookie", async () => {
    const cookie = await logIn();
    expect((await call("/v1/functions", { headers: { cookie } })).status).toBe(200);
    const page = await call("/runs", { headers: { cookie } });
    expect(page.status).toBe(200);
    // Its API call went with the cookie; and a session can log out from any page.
    const html = await page.text();
    expect(html).toContain("<h1>Runs</h1>");
    expect(html).toContain('<form class="logout" method="post" action="/logout">');
  });

  it("refuses a wrong key with the form again and no cookie", async () => {
    for (const key of ["wrong", "", "key-one", `${SIGNING_KEY} `]) {
      const response = await call("/login", { method: "POST", headers: { origin: ORIGIN }, body: new URLSearchParams({ key, next: "/runs" }) });
      expect(response.status).toBe(401);
      expect(response.headers.get("set-cookie")).toBeNull();
      expect(response.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
      const page = await response.text();
      expect(page).toContain("That is not the signing key.");
      for (const secret of SECRETS) expect(page).not.toContain(secret);
    }
  });

  it("refuses forged, expired and foreign session cookies", async () => {
    const now = Date.now();
    const forged = [
      `stepflare_session=${SIGNING_KEY}`,
      `stepflare_session=${now + SESSION_TTL_MS}.${"A".repeat(43)}`,
      `stepflare_session=${await signSession("another-key", now + SESSION_TTL_MS)}`,
      `stepflare_session=${await signSession(SIGNING_KEY, now - 1000)}`,
      // A valid signature with the expiry changed.
      `stepflare_session=${(await signSession(SIGNING_KEY, now + 1000)).replace(/^[0-9]+/, String(now + 10 * SESSION_TTL_MS))}`,
    ];
    for (const cookie of forged) {
      const api = await call("/v1/functions", { headers: { cookie } });
      expect(api.status, cookie).toBe(401);
      await expectNothingRevealed(api);
      expect((await call("/runs", { headers: { cookie } })).status, cookie).toBe(303);
    }
    // The same token with a live expiry is accepted: the refusals above are the expiry and the signature.
    const live = `stepflare_session=${await signSession(SIGNING_KEY, now + 60_000)}`;
    expect((await call("/v1/functions", { headers: { cookie: live } })).status).toBe(200);
  });

  it("lets a wrong bearer decide even beside a valid cookie", async () => {
    const cookie = await logIn();
    expect((await call("/v1/functions", { headers: { cookie, authorization: "Bearer wrong" } })).status).toBe(401);
  });

  it.each(["//evil.com", "https://evil.com/x", "/\\evil.com", "/\t/evil.com", "/.//evil.com", "/%2e%2e//evil.com", "/runs/..//evil.com", "evil.com", "javascript:alert(1)", ""])("never redirects to next=%j", async (next) => {
    const response = await call("/login", { method: "POST", headers: { origin: ORIGIN }, body: new URLSearchParams({ key: SIGNING_KEY, next }) });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/");
    expect(safeNext(next, ORIGIN)).toBe("/");
  });

  it("keeps a next on this origin", () => {
    expect(safeNext("/runs/abc?status=Failed#steps", ORIGIN)).toBe("/runs/abc?status=Failed#steps");
    expect(safeNext("/%2F%2Fevil.com", ORIGIN)).toBe("/%2F%2Fevil.com");
  });

  it("refuses a login body over 16 KiB with a 413 and no cookie, whether its length is declared or not", async () => {
    const form = new URLSearchParams({ key: SIGNING_KEY, next: `/${"x".repeat(20 * 1024)}` }).toString();
    const streamed = () => new Blob([form]).stream();
    for (const body of [form, streamed()]) {
      const response = await call("/login", { method: "POST", headers: { origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" }, body });
      expect(response.status).toBe(413);
      expect(response.headers.get("set-cookie")).toBeNull();
      expect((await expectNothingRevealed(response)).error).toMatch(/16 KiB/);
    }
  });

  it("refuses a login posted from another origin", async () => {
    for (const headers of [{ origin: "https://evil.example" }, { origin: "null" }, { "sec-fetch-site": "cross-site" }] as Record<string, string>[]) {
      const response = await call("/login", { method: "POST", headers, body: new URLSearchParams({ key: SIGNING_KEY }) });
      expect(response.status).toBe(403);
      expect(response.headers.get("set-cookie")).toBeNull();
    }
  });

  it("logs out: clears the cookie, from this origin only", async () => {
    expect((await call("/logout", { method: "POST", headers: { origin: "https://evil.example" } })).status).toBe(403);
    const response = await call("/logout", { method: "POST", headers: { origin: ORIGIN } });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/login");
    expect(response.headers.get("set-cookie")).toMatch(/^stepflare_session=; Max-Age=0; .*HttpOnly/);
  });
});

describe("writes with the session cookie", () => {
  // An unknown function: past auth, the route answers 404.
  const pause = "/v1/functions/no-such-function/pause";

  it("are refused from another origin, or from an origin not shown", async () => {
    const cookie = await logIn();
    for (const headers of [{ origin: "https://evil.example" }, { origin: "http://stepflare.test:8080" }, { origin: "null" }, {}, { "sec-fetch-site": "cross-site" }, { "sec-fetch-site": "same-site" }] as Record<string, string>[]) {
      const response = await call(pause, { method: "POST", headers: { cookie, ...headers } });
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect((await expectNothingRevealed(response)).error).toMatch(/cross-origin/);
    }
  });

  it("pass from this origin", async () => {
    const cookie = await logIn();
    expect((await call(pause, { method: "POST", headers: { cookie, origin: ORIGIN } })).status).toBe(404);
    expect((await call(pause, { method: "POST", headers: { cookie, "sec-fetch-site": "same-origin" } })).status).toBe(404);
    expect((await call("/runs/x", { method: "POST", headers: { cookie, origin: "https://evil.example" } })).status).toBe(403);
  });

  it("need no origin with the bearer, which no browser sends by itself", async () => {
    expect((await call(pause, { method: "POST", headers: { authorization: `Bearer ${SIGNING_KEY}`, origin: "https://evil.example" } })).status).toBe(404);
  });
});

describe("dev mode", () => {
  it("opens the API, the pages and every event key", async () => {
    expect((await call("/v1/functions", {}, dev)).status).toBe(200);
    expect((await call("/e/any-key", event, dev)).status).toBe(200);
    const page = await call("/runs", {}, dev);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
  });

  it("has no login to show without a signing key", async () => {
    const response = await call("/login?next=%2Fruns", {}, dev);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/runs");
  });

  it("refuses writes a browser sends from another origin: no web page drives a local dev server", async () => {
    const writes: [string, RequestInit][] = [
      ["/e/any-key", event],
      ["/v1/functions/no-such-function/pause", { method: "POST" }],
      ["/v1/dev/faults", { method: "POST", body: '{"d1":true}' }],
      ["/v1/runs/0123456789abcdef0123456789abcdef", { method: "DELETE" }],
      ["/runs/x", { method: "POST" }],
    ];
    for (const [path, init] of writes) {
      for (const headers of [{ origin: "https://evil.example" }, { origin: "http://localhost:3000" }, { "sec-fetch-site": "cross-site" }] as Record<string, string>[]) {
        const response = await call(path, { ...init, headers: { ...(init.headers as Record<string, string>), ...headers } }, dev);
        expect(response.status, `${path} ${JSON.stringify(headers)}`).toBe(403);
      }
    }
    // The fault switch was never thrown.
    expect(await (await call("/v1/dev/faults", {}, dev)).json()).toEqual({ data: { d1: false, queue: false } });
  });

  it("takes writes from its own origin and from clients that send no origin", async () => {
    expect((await call("/e/any-key", { ...event, headers: { ...event.headers, origin: ORIGIN } }, dev)).status).toBe(200);
    expect((await call("/e/any-key", { ...event, headers: { ...event.headers, "sec-fetch-site": "same-origin" } }, dev)).status).toBe(200);
    expect((await call("/e/any-key", event, dev)).status).toBe(200);
  });

  it("logs in with a signing key set, with a cookie that is not Secure (dev may be plain http)", async () => {
    const cookie = (await call("/login", { method: "POST", headers: { origin: ORIGIN }, body: new URLSearchParams({ key: SIGNING_KEY }) }, { ...dev, STEPFLARE_SIGNING_KEY: SIGNING_KEY })).headers.get("set-cookie")!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toMatch(/Secure/);
  });
});

describe("every route of the API", () => {
  // From the OpenAPI document's own list, so a route added later is covered without a new test.
  const routes = API_ROUTES.filter((route) => route.path.startsWith("/v1/") && route.path !== "/v1/openapi.json").map((route) => ({
    method: route.method.toUpperCase(),
    path: route.path.replace(/\{(\w+)\}/g, "0123456789abcdef0123456789abcdef"),
  }));

  it("needs the signing key outside dev mode: 401 without it, anything but 401 with it", async () => {
    expect(routes.length).toBeGreaterThan(15);
    for (const { method, path } of routes) {
      const init = { method, ...(method === "GET" ? {} : { headers: { "content-type": "application/json" }, body: "{}" }) };
      const refused = await call(path, init);
      expect(refused.status, `${method} ${path} without a key`).toBe(401);
      await expectNothingRevealed(refused);
      const stream = method === "GET" && path.endsWith("/stream");
      if (stream) continue; // an unknown run's stream is a 404 either way; its auth is the same middleware
      const allowed = await call(path, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${SIGNING_KEY}` } });
      expect(allowed.status, `${method} ${path} with the key`).not.toBe(401);
      await allowed.body?.cancel();
    }
  });

  it("is open in dev mode, to requests without a foreign Origin", async () => {
    for (const { method, path } of routes) {
      const init = { method, ...(method === "GET" ? {} : { headers: { "content-type": "application/json" }, body: "{}" }) };
      const response = await call(path, init, dev);
      expect(response.status, `${method} ${path}`).not.toBe(401);
      await response.body?.cancel();
    }
  });
});
