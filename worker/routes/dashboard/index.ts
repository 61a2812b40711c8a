import { Hono } from "hono";
import type { Env } from "../../env.ts";
import { assetRoutes } from "./assets.ts";
import { eventPage } from "./event.tsx";
import { eventsPage } from "./events.tsx";
import { functionsPage } from "./functions.tsx";
import { runPage } from "./run.tsx";
import { runsPage } from "./runs.tsx";
import { securityHeaders } from "./security.ts";

/**
 * The dashboard: server-rendered pages over the JSON API (each page asks `/v1` in process, with its
 * viewer's credentials), plus the one stylesheet and script they load. Mounted at `/` by serve().
 *
 * @example
 * app.route("/", dashboardRoutes);
 */
export const dashboardRoutes = new Hono<{ Bindings: Env }>();

dashboardRoutes.use("/", securityHeaders);
dashboardRoutes.use("/runs", securityHeaders);
dashboardRoutes.use("/runs/*", securityHeaders);
dashboardRoutes.use("/events", securityHeaders);
dashboardRoutes.use("/events/*", securityHeaders);
dashboardRoutes.use("/assets/*", securityHeaders);

dashboardRoutes.route("/", assetRoutes);
dashboardRoutes.get("/", functionsPage);
dashboardRoutes.get("/runs", runsPage);
dashboardRoutes.get("/runs/:runId", runPage);
dashboardRoutes.get("/events", eventsPage);
dashboardRoutes.get("/events/:eventId", eventPage);
