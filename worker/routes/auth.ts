import type { MiddlewareHandler } from "hono";
import type { Env } from "../env.ts";
import { jsonError } from "./errors.ts";

/** True under `wrangler dev` (`STEPFLARE_DEV = "1"`): any event key works and the API is open. */
export function isDevMode(env: Env): boolean {
  return env.STEPFLARE_DEV === "1";
}

/**
 * Outside dev mode, `POST /e/:key` accepts only the keys listed in `STEPFLARE_EVENT_KEYS`
 * (comma-separated). A wrong key is a 401 that says nothing about which keys exist.
 */
export const requireEventKey: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  if (isDevMode(c.env)) return next();
  const keys = (c.env.STEPFLARE_EVENT_KEYS ?? "").split(",").map((k) => k.trim()).filter(Boolean);
  const given = c.req.param("key") ?? "";
  let ok = false;
  // Compare with every key, so the time taken does not tell which one was close.
  for (const key of keys) ok = (await secretsEqual(given, key)) || ok;
  return ok ? next() : jsonError(c, 401, "unknown event key");
};

/** Outside dev mode, the REST API needs `Authorization: Bearer <STEPFLARE_SIGNING_KEY>`. */
export const requireSigningKey: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  if (isDevMode(c.env)) return next();
  const expected = c.env.STEPFLARE_SIGNING_KEY;
  const header = c.req.header("authorization") ?? "";
  const given = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
  const ok = Boolean(expected) && (await secretsEqual(given, expected ?? ""));
  return ok ? next() : jsonError(c, 401, "missing or wrong signing key: send Authorization: Bearer <STEPFLARE_SIGNING_KEY>");
};

/** Constant-time equality of two secrets: compares their SHA-256 digests, which have equal length. */
async function secretsEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [da, db] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(a)), crypto.subtle.digest("SHA-256", encoder.encode(b))]);
  return crypto.subtle.timingSafeEqual(da, db);
}
