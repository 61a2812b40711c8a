import { createRoute, OpenAPIHono, z, type RouteConfig } from "@hono/zod-openapi";
import { cancellationRequestSchema } from "../../admin/cancellations.ts";
import { bulkRepairRequestSchema, repairRequestSchema, repointRequestSchema } from "../../admin/repair.ts";
import { healthViewSchema, repairResultSchema } from "../../views/health.ts";
import {
  appViewSchema,
  syncAppBodySchema,
  cancellationViewSchema,
  errorBodySchema,
  eventViewSchema,
  eventsQuerySchema,
  functionViewSchema,
  invokeBodySchema,
  pageSchema,
  pauseBodySchema,
  rerunBodySchema,
  runDetailSchema,
  runIndexViewSchema,
  runSummaryViewSchema,
  runViewSchema,
  runsQuerySchema,
  sendAnswerSchema,
} from "../../views/schemas.ts";

// The OpenAPI description of every route, built from the same zod schemas the handlers validate
// and answer with (GET /v1/openapi.json). test/api.test.ts checks that each route the Worker
// serves is described here, and nothing more.

const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });
const dataOf = <T extends z.ZodType>(schema: T) => z.object({ data: schema });
const errors = {
  400: json(errorBodySchema, "The request is invalid: `error` says what is wrong, `path` where"),
  401: json(errorBodySchema, "Missing or wrong signing key"),
  404: json(errorBodySchema, "No such function, run or event"),
};
const body = <T extends z.ZodType>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: false } });
const param = (name: string) => z.object({ [name]: z.string().openapi({ param: { name, in: "path" } }) });
const runIdParam = param("runId");
const functionIdParam = param("functionId");
const eventIdParam = param("eventId");

const route = (config: RouteConfig) => createRoute({ security: [{ bearer: [] }], ...config });

export const API_ROUTES: RouteConfig[] = [
  route({ method: "get", path: "/v1/functions", summary: "Functions, with their runs of the last 24 hours", responses: { 200: json(dataOf(z.array(functionViewSchema)), "The registered functions"), 401: errors[401] } }),
  route({ method: "post", path: "/v1/functions/{functionId}/invoke", summary: "Start a run now with data, matching no trigger", request: { params: functionIdParam, ...body(invokeBodySchema) }, responses: { 201: json(dataOf(z.object({ run_id: z.string() })), "The run started"), 413: json(errorBodySchema, "Data over an event's 512 KiB"), ...errors } }),
  route({ method: "post", path: "/v1/functions/{functionId}/trigger", summary: "Run a cron function now", request: { params: functionIdParam }, responses: { 200: json(dataOf(z.object({ run_id: z.string(), function_id: z.string(), event_id: z.string() })), "The run started"), ...errors } }),
  route({ method: "post", path: "/v1/functions/{functionId}/pause", summary: "Pause a function: its events are recorded, its runs not started", request: { params: functionIdParam, ...body(pauseBodySchema) }, responses: { 200: json(dataOf(z.object({ function_id: z.string(), paused: z.literal(true), skip: z.boolean() })), "Paused"), ...errors } }),
  route({ method: "post", path: "/v1/functions/{functionId}/resume", summary: "Resume a paused function", request: { params: functionIdParam }, responses: { 200: json(dataOf(z.object({ function_id: z.string(), paused: z.literal(false), skipped: z.boolean() })), "Resumed"), 409: json(errorBodySchema, "Not paused"), ...errors } }),
  route({ method: "get", path: "/v1/runs", summary: "Runs, newest first, a page at a time", request: { query: runsQuerySchema }, responses: { 200: json(pageSchema(runIndexViewSchema, "RunsPage"), "A page of runs"), ...errors } }),
  route({ method: "get", path: "/v1/runs/{runId}", summary: "A run with its steps, trigger events and child runs", request: { params: runIdParam }, responses: { 200: json(dataOf(runDetailSchema), "The run"), ...errors } }),
  route({
    method: "get",
    path: "/v1/runs/{runId}/stream",
    summary: "The run's history, then its steps and published messages as they happen (server-sent events: run, step, publish, end)",
    request: { params: runIdParam },
    responses: { 200: { content: { "text/event-stream": { schema: z.string() } }, description: "Events `run` (RunSummary), `step` (Step), `publish` (Published), `end` (RunSummary), until the run ends" }, ...errors },
  }),
  route({ method: "delete", path: "/v1/runs/{runId}", summary: "Cancel a run", request: { params: runIdParam }, responses: { 200: json(dataOf(runViewSchema.nullable()), "The run as it ended"), ...errors } }),
  route({ method: "post", path: "/v1/runs/{runId}/rerun", summary: "A new run from the same events, optionally reusing the steps before one", request: { params: runIdParam, ...body(rerunBodySchema) }, responses: { 201: json(dataOf(z.object({ run_id: z.string() })), "The new run"), ...errors } }),
  route({ method: "get", path: "/v1/health", summary: "Stuck runs counted by reason, with the listing of each", responses: { 200: json(dataOf(healthViewSchema), "Stuck runs as the tick last found them"), 401: errors[401] } }),
  route({ method: "post", path: "/v1/runs/repair", summary: "Repair several runs the same way: wake, cancel, rerun or repoint", request: { body: { content: { "application/json": { schema: bulkRepairRequestSchema } }, required: true } }, responses: { 200: json(dataOf(z.array(repairResultSchema)), "What each repair did, or why not"), ...errors } }),
  route({ method: "post", path: "/v1/runs/{runId}/repair", summary: "Repair a run: wake, cancel, rerun or repoint", request: { params: runIdParam, body: { content: { "application/json": { schema: repairRequestSchema } }, required: true } }, responses: { 200: json(dataOf(repairResultSchema), "What the repair did"), ...errors } }),
  route({ method: "post", path: "/v1/runs/{runId}/wake", summary: "Make a run due now (its wake time and a retry's backoff brought forward)", request: { params: runIdParam }, responses: { 200: json(dataOf(repairResultSchema), "The run's status"), ...errors } }),
  route({ method: "post", path: "/v1/runs/{runId}/repoint", summary: "Run a run as another registered function, from its stored steps, and wake it", request: { params: runIdParam, body: { content: { "application/json": { schema: repointRequestSchema } }, required: true } }, responses: { 200: json(dataOf(repairResultSchema), "The run's status"), ...errors } }),
  route({ method: "get", path: "/v1/events", summary: "The event log, newest first, a page at a time", request: { query: eventsQuerySchema }, responses: { 200: json(pageSchema(eventViewSchema, "EventsPage"), "A page of events"), ...errors } }),
  route({ method: "post", path: "/v1/events", summary: "Send one event or an array (as POST /e/{key}, with the signing key)", request: { body: { content: { "application/json": { schema: z.unknown() } }, required: true } }, responses: { 200: json(sendAnswerSchema, "The events were accepted"), 413: json(errorBodySchema, "Too large"), ...errors } }),
  route({ method: "get", path: "/v1/events/{eventId}", summary: "An event (the newest with this id)", request: { params: eventIdParam }, responses: { 200: json(dataOf(eventViewSchema), "The event"), ...errors } }),
  route({ method: "get", path: "/v1/events/{eventId}/runs", summary: "The runs an event started", request: { params: eventIdParam }, responses: { 200: json(dataOf(z.array(runSummaryViewSchema)), "Its runs, oldest first"), ...errors } }),
  route({ method: "post", path: "/v1/cancellations", summary: "Cancel runs in bulk, in the background", request: { body: { content: { "application/json": { schema: cancellationRequestSchema } }, required: true } }, responses: { 201: json(dataOf(cancellationViewSchema), "The cancellation started"), ...errors } }),
  route({ method: "get", path: "/v1/cancellations/{id}", summary: "A bulk cancellation's progress", request: { params: param("id") }, responses: { 200: json(dataOf(cancellationViewSchema), "Its progress"), ...errors } }),
  route({ method: "get", path: "/v1/apps", summary: "Apps served by the inngest SDK, with their last sync", responses: { 200: json(dataOf(z.array(appViewSchema)), "The synced apps"), 401: errors[401] } }),
  route({ method: "post", path: "/v1/apps", summary: "Sync an app served by the inngest SDK (again: its functions are replaced)", request: body(syncAppBodySchema), responses: { 200: json(dataOf(appViewSchema), "The app as it synced"), 502: json(errorBodySchema, "The sync failed"), ...errors } }),
  route({ method: "delete", path: "/v1/apps/{appId}", summary: "Remove an app and its functions", request: { params: param("appId") }, responses: { 200: json(dataOf(z.object({ id: z.string() })), "Removed"), ...errors } }),
  route({ method: "get", path: "/v1/usage", summary: "Billable operations this isolate counted", responses: { 200: json(dataOf(z.record(z.string(), z.number())), "Counters"), 401: errors[401] } }),
  route({ method: "get", path: "/v1/openapi.json", summary: "This document", security: [], responses: { 200: { description: "The OpenAPI 3.1 description of the API" } } }),
  route({
    method: "post",
    path: "/e/{key}",
    summary: "Send one event or an array (Inngest's event API)",
    security: [],
    request: { params: param("key"), body: { content: { "application/json": { schema: z.unknown() } }, required: true } },
    responses: { 200: json(sendAnswerSchema, "The events were accepted"), 400: errors[400], 401: json(errorBodySchema, "Unknown event key"), 413: json(errorBodySchema, "Too large"), 415: json(errorBodySchema, "Not JSON") },
  }),
];

let document: unknown;

/** The OpenAPI 3.1 document of the API, built once per isolate. */
export function openApiDocument(): unknown {
  if (document) return document;
  const app = new OpenAPIHono();
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer", description: "STEPFLARE_SIGNING_KEY (not needed in dev mode)" });
  for (const config of API_ROUTES) app.openAPIRegistry.registerPath(config);
  document = app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: { title: "Stepflare", version: "0.1.0", description: "Durable, event-driven functions on Cloudflare Workers: the REST API of the dashboard, and the event API." },
  });
  return document;
}
