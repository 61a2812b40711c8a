import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { isDevMode, signingKey, type Env } from "../platform/env.ts";
import { jsonError } from "./errors.ts";
import { isValidSession, SESSION_COOKIE } from "./session.ts";

type AuthContext = Context<{ Bindings: Env }>;

/**
 * Outside dev mode, `POST /e/:key` accepts only the keys listed in `STEPFLARE_EVENT_KEYS`
 * (comma-separated). A wrong key is a 401 that says nothing about which keys exist; with no keys
 * configured every event is refused with a 503 that names the secret.
 *
 * @example
 * eventRoutes.post("/e/:key", requireEventKey, handler);
 */
export const requireEventKey: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  if (isDevMode(c.env)) return refuseCrossOriginWrite(c) ?? next();
  const keys = (c.env.STEPFLARE_EVENT_KEYS ?? "").split(",").map((k) => k.trim()).filter(Boolean);
  if (keys.length === 0) return missingSecret(c, "STEPFLARE_EVENT_KEYS");
  const given = c.req.param("key") ?? "";
  let ok = false;
  // Compare with every key, so the time taken does not tell which one was close.
  for (const key of keys) ok = (await secretsEqual(given, key)) || ok;
  return ok ? next() : jsonError(c, 401, "unknown event key");
};

/**
 * Outside dev mode, the REST API needs `Authorization: Bearer <STEPFLARE_SIGNING_KEY>` or the
 * dashboard's session cookie; a write by cookie must come from this origin (CSRF). Without a
 * configured signing key every request is a 503 that names the secret.
 *
 * @example
 * apiRoutes.use("/v1/*", requireSigningKey);
 */
export const requireSigningKey: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const passed = await admitWithSigningKey(c, next);
  if (passed !== null) return passed;
  return jsonError(c, 401, "missing or wrong signing key: send Authorization: Bearer <STEPFLARE_SIGNING_KEY>, or log in at /login");
};

/**
 * For dashboard pages: outside dev mode a request needs the session cookie (or the bearer), else a
 * page load is sent (303) to `/login?next=<this page>`; a write by cookie must come from this
 * origin. Mount it, with `pageHeaders`, on every dashboard route.
 *
 * @example
 * dashboard.use("/runs/*", pageHeaders, requireDashboardSession);
 */
export const requireDashboardSession: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const passed = await admitWithSigningKey(c, next);
  if (passed !== null) return passed;
  if (isStateChanging(c)) return jsonError(c, 401, "not logged in: log in at /login");
  const url = new URL(c.req.url);
  return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
};

/**
 * What the API and the pages share: in dev mode any request (but a cross-origin write) goes on; outside
 * it, one with the bearer, or the cookie (a write from this origin only), goes on, and a Worker
 * without its signing key refuses. Null: no valid credential, the caller answers.
 */
async function admitWithSigningKey(c: AuthContext, next: () => Promise<void>): Promise<Response | void | null> {
  if (isDevMode(c.env)) return refuseCrossOriginWrite(c) ?? next();
  const key = signingKey(c.env);
  if (!key) return missingSecret(c, "STEPFLARE_SIGNING_KEY");
  const by = await authenticate(c, key);
  if (by === "cookie") return refuseCookieWriteFromElsewhere(c) ?? next();
  if (by === "bearer") return next();
  return null;
}

/**
 * How the request proves it knows the signing key: a bearer header (which, when sent, decides
 * alone), a valid session cookie, or not at all.
 */
async function authenticate(c: AuthContext, key: string): Promise<"bearer" | "cookie" | null> {
  const header = c.req.header("authorization");
  if (header !== undefined) {
    const bearer = /^Bearer (.+)$/i.exec(header)?.[1] ?? "";
    return bearer !== "" && (await secretsEqual(bearer, key)) ? "bearer" : null;
  }
  return (await isValidSession(key, getCookie(c, SESSION_COOKIE), Date.now())) ? "cookie" : null;
}

/** The answer of a production Worker without its secret: closed, and saying how to fix it. */
export function missingSecret(c: AuthContext, name: "STEPFLARE_SIGNING_KEY" | "STEPFLARE_EVENT_KEYS"): Response {
  return jsonError(c, 503, `${name} is not set: run \`wrangler secret put ${name}\``);
}

/** Anything but a read: the methods a cross-site form or fetch could use to change state. */
export function isStateChanging(c: AuthContext): boolean {
  return !["GET", "HEAD", "OPTIONS"].includes(c.req.method);
}

/**
 * A 403 for a write a browser sent from another origin (its `Origin`, or `Sec-Fetch-Site`, says
 * so); undefined otherwise. Requests with neither header (curl, SDKs) pass: no browser sent them.
 * In dev mode this stops any web page from driving a local dev server through the browser.
 */
export function refuseCrossOriginWrite(c: AuthContext): Response | undefined {
  if (!isStateChanging(c)) return undefined;
  const origin = c.req.header("origin");
  const site = c.req.header("sec-fetch-site");
  const crossOrigin = (origin !== undefined && origin !== new URL(c.req.url).origin) || site === "cross-site" || site === "same-site";
  return crossOrigin ? jsonError(c, 403, "cross-origin request refused: a write must come from this origin") : undefined;
}

/**
 * A 403 for a write authenticated only by the cookie that does not show it came from this origin:
 * the browser attaches the cookie by itself, so the origin is what tells our page from another.
 */
function refuseCookieWriteFromElsewhere(c: AuthContext): Response | undefined {
  if (!isStateChanging(c)) return undefined;
  const origin = c.req.header("origin");
  const sameOrigin = origin !== undefined ? origin === new URL(c.req.url).origin : c.req.header("sec-fetch-site") === "same-origin";
  return sameOrigin ? undefined : jsonError(c, 403, "cross-origin request refused: a write with the session cookie must come from this origin");
}

/** Constant-time equality of two secrets: compares their SHA-256 digests, which have equal length. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [da, db] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(a)), crypto.subtle.digest("SHA-256", encoder.encode(b))]);
  return crypto.subtle.timingSafeEqual(da, db);
}
