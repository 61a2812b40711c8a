import { Hono } from "hono";
import { Stepflare } from "../sdk/client.ts";
import type { EventPayload } from "../sdk/event.ts";
import type { EventCatalog } from "../sdk/eventSchemas.ts";
import type { MiddlewareEntry } from "../sdk/middleware/v3.ts";
import type { StepflareFunction } from "../sdk/function.ts";
import { instrument } from "./platform/bindings.ts";
import type { Env } from "./platform/env.ts";
import { acceptEvents } from "./ingest/ingest.ts";
import { createLogger } from "./platform/logger.ts";
import type { QueueMessage } from "./queue/messages.ts";
import { fireCronTrigger } from "./schedule/crons.ts";
import { consumeBatch } from "./dispatch/consumer.ts";
import { registerFunctions } from "./platform/registry.ts";
import { loadRemoteFunctions } from "./remote/apps.ts";
import { apiRoutes } from "./routes/api.ts";
import { requireDashboardSession } from "./routes/auth.ts";
import { dashboardRoutes } from "./routes/dashboard/index.ts";
import { devRoutes } from "./routes/dev.ts";
import { errorResponse, jsonError } from "./routes/errors.ts";
import { StepflareError } from "./platform/errors.ts";
import { eventRoutes } from "./routes/events.ts";
import { registerRoutes } from "./routes/register.ts";
import { loginRoutes } from "./routes/login.tsx";
import { pageHeaders } from "./routes/pageHeaders.ts";
import { ensureScheduler, tick } from "./schedule/tick.ts";
import { checkShardMigrations } from "./db/shards.ts";
import { env as workerEnv } from "cloudflare:workers";

/** The dashboard's routes; `/login` and `/logout` (routes/login.tsx) guard themselves. */
const DASHBOARD_PATHS = ["/", "/runs", "/runs/*", "/events", "/events/*", "/apps", "/health"];

/** How long a queue batch waits before it is tried again while a D1 shard lacks a migration. */
const SHARD_NOT_READY_RETRY_SECONDS = 60;

export interface ServeOptions {
  // Any client: with v3 middleware and EventSchemas as well as without.
  client: Stepflare<readonly MiddlewareEntry[], EventCatalog>;
  functions: StepflareFunction[];
}

/**
 * Builds the Worker's default export from the user's functions: the event API and REST API
 * (`fetch`), dispatch (`queue`) and the tick (`scheduled`).
 *
 * @example
 * export * from "stepflare/worker";
 * export default serve({ client: app, functions: [hello] });
 */
export function serve({ client, functions }: ServeOptions): ExportedHandler<Env, QueueMessage> {
  registerFunctions(functions);
  // Inside the Worker, app.send() takes the ingest path directly, for the functions' own clients too
  // (a module of functions may make its own, with its own middleware).
  const sender = async (events: EventPayload[]) => acceptEvents(instrument(workerEnv as Env), events);
  client.useSender(sender);
  for (const fn of functions) if (fn.client instanceof Stepflare && !fn.client.hasSender) fn.client.useSender(sender);

  const app = new Hono<{ Bindings: Env }>();
  // A shard without the newest migration answers 503 naming it (once per isolate: worker/db/shards.ts).
  app.use(async (c, next) => {
    await Promise.all([checkShardMigrations(c.env), ensureScheduler(c.env), loadRemoteFunctions(c.env)]);
    await next();
  });
  app.route("/", eventRoutes);
  app.route("/", registerRoutes);
  // The dashboard's pages: the login (or the bearer) outside dev mode, and a strict CSP on each.
  for (const path of DASHBOARD_PATHS) app.use(path, pageHeaders, requireDashboardSession);
  app.route("/", loginRoutes);
  app.route("/", apiRoutes);
  app.route("/", devRoutes);
  app.route("/", dashboardRoutes);
  app.notFound((c) => jsonError(c, 404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((err, c) => {
    if (err instanceof StepflareError) return errorResponse(c, err);
    createLogger().error("request failed", { method: c.req.method, path: new URL(c.req.url).pathname, error: String(err), stack: err.stack });
    return jsonError(c, 500, "internal error");
  });

  return {
    // Every binding use is counted (and, in dev mode, can be made to fail) by the wrapper.
    fetch: (request, env, ctx) => app.fetch(request, instrument(env), ctx),
    async queue(batch, env) {
      const metered = instrument(env);
      try {
        await checkShardMigrations(metered);
      } catch (err) {
        // A shard behind (a deploy before its migrations): the batch waits a minute a try, not its retries' worth of instant redeliveries.
        createLogger().error("queue batch held back: a D1 shard is not ready", { error: String(err) });
        batch.retryAll({ delaySeconds: SHARD_NOT_READY_RETRY_SECONDS });
        return;
      }
      await ensureScheduler(metered);
      await consumeBatch(batch, metered);
    },
    // The `wrangler.toml` cron trigger (production; `wrangler dev --test-scheduled` on request): the
    // same tick as the Scheduler's alarm, and the functions whose cron is exactly this trigger's.
    async scheduled(controller, env) {
      const metered = instrument(env);
      await checkShardMigrations(metered);
      const now = Date.now();
      await Promise.all([tick(metered, now), fireCronTrigger(metered, controller.cron, controller.scheduledTime, now)]);
    },
  };
}
