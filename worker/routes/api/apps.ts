import { Hono } from "hono";
import { allApps, deleteApp, type AppRow } from "../../db/apps.ts";
import type { Env } from "../../platform/env.ts";
import { loadRemoteFunctions, SyncError, syncApp } from "../../remote/apps.ts";
import { parseJsonBody } from "../body.ts";
import { errorResponse, jsonError } from "../errors.ts";
import { syncAppBodySchema, type AppView } from "../../views/schemas.ts";

/** `/v1/apps`: apps served by the official `inngest` SDK whose functions run here ("Bring your Inngest app"). */
export const appsRoutes = new Hono<{ Bindings: Env }>();

appsRoutes.get("/v1/apps", async (c) => {
  const apps = await allApps(c.env.DB);
  return c.json({ data: apps.map(toAppView) });
});

/** Syncs the app at `url`: a new app joins, a known one's functions are replaced (added, changed, removed). */
appsRoutes.post("/v1/apps", async (c) => {
  const body = await parseJsonBody(c, syncAppBodySchema, "app", '{ "url": "http://…/api/inngest" }');
  if (!body.ok) return body.response;
  try {
    return c.json({ data: toAppView(await syncApp(c.env, body.data.url)) });
  } catch (err) {
    if (err instanceof SyncError) return errorResponse(c, err);
    throw err;
  }
});

appsRoutes.delete("/v1/apps/:appId", async (c) => {
  const id = c.req.param("appId");
  if (!(await deleteApp(c.env.DB, id))) return jsonError(c, 404, `no app with id ${JSON.stringify(id)}`);
  await loadRemoteFunctions(c.env, { force: true });
  return c.json({ data: { id } });
});

function toAppView(app: AppRow): AppView {
  const functions = JSON.parse(app.functions) as { id: string; name?: string; triggers: unknown[] }[];
  return {
    id: app.id,
    url: app.url,
    framework: app.framework,
    sdk: app.sdk,
    functions: functions.map((fn) => ({ id: fn.id, name: fn.name ?? fn.id, triggers: fn.triggers })),
    synced_at: new Date(app.synced_at).toISOString(),
    error: app.error,
    error_at: app.error_at === null ? null : new Date(app.error_at).toISOString(),
  };
}
