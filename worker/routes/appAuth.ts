import type { MiddlewareHandler } from "hono";
import type { Env } from "../platform/env.ts";
import { checkBearer } from "../remote/signature.ts";
import { isDevMode, signingKey } from "../platform/env.ts";
import { jsonError } from "./errors.ts";

/**
 * The calls an app on the `inngest` SDK makes to Stepflare (`POST /fn/register`): outside dev mode
 * they carry `Authorization: Bearer signkey-<env>-<SHA-256 of the key>`, the SDK's hash of its
 * `INNGEST_SIGNING_KEY`, which must be Stepflare's `STEPFLARE_SIGNING_KEY`. In dev mode nothing is
 * checked, as Inngest's Dev Server checks nothing.
 */
export const requireAppKey: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  if (isDevMode(c.env)) return next();
  const key = signingKey(c.env);
  if (!key) return jsonError(c, 503, "this Worker has no STEPFLARE_SIGNING_KEY secret: set it (the apps' INNGEST_SIGNING_KEY) with wrangler secret put");
  if (await checkBearer(c.req.header("authorization"), [key])) return next();
  return c.json({ status: 401, error: "missing or wrong signing key: the app's INNGEST_SIGNING_KEY must be this Worker's STEPFLARE_SIGNING_KEY" }, 401);
};
