import { Hono } from "hono";
import type { Env } from "../../platform/env.ts";
import { pageHeaders } from "../pageHeaders.ts";
import { appsPage } from "./apps.tsx";
import { assetRoutes } from "./assets.ts";
import { eventPage } from "./event.tsx";
import { eventsPage } from "./events.tsx";
import { functionsPage } from "./functions.tsx";
import { healthPage } from "./health.tsx";
import { runPage } from "./run.tsx";
import { runsPage } from "./runs.tsx";

/**
 * The dashboard: server-rendered pages over the JSON API (each page asks `/v1` in process, with its
 * viewer's credentials), plus the one stylesheet and script they load. Mounted at `/` by serve(),
 * which puts the login (requireDashboardSession) and the page headers in front of every page.
 *
 * @example
 * app.route("/", dashboardRoutes);
 */
export const dashboardRoutes = new Hono<{ Bindings: Env }>();

// The assets are the same for everyone (the login page's visitor included): no session, but the page headers.
dashboardRoutes.use("/assets/*", pageHeaders);

dashboardRoutes.route("/", assetRoutes);
dashboardRoutes.get("/", functionsPage);
dashboardRoutes.get("/runs", runsPage);
dashboardRoutes.get("/runs/:runId", runPage);
dashboardRoutes.get("/events", eventsPage);
dashboardRoutes.get("/events/:eventId", eventPage);
dashboardRoutes.get("/apps", appsPage);
dashboardRoutes.get("/health", healthPage);
