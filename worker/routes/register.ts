import { Hono } from "hono";
import type { Env } from "../env.ts";
import { storeRegistration, SyncError } from "../remote/apps.ts";
import { requireAppKey } from "./appAuth.ts";

/**
 * `POST /fn/register`: where the `inngest` SDK sends its functions when an app is synced out of
 * band (a `PUT` to its serve URL, from `POST /v1/apps` or from anyone). The SDK answers that `PUT`
 * with the `status` and `error` of this body, not its HTTP status (protocol §1).
 */
export const registerRoutes = new Hono<{ Bindings: Env }>();

registerRoutes.post("/fn/register", requireAppKey, async (c) => {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return c.json({ status: 400, error: "the sync's body is not valid JSON" }, 400);
  }
  try {
    const { app, modified } = await storeRegistration(c.env, body);
    return c.json({ ok: true, status: 200, modified, app_id: app.id });
  } catch (err) {
    if (err instanceof SyncError) return c.json({ status: 400, error: err.message }, 400);
    throw err;
  }
});
