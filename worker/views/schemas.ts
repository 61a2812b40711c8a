import { z } from "@hono/zod-openapi";

// The REST API's shapes, one schema each: the views' TypeScript types, the query and body
// validation and the OpenAPI document (GET /v1/openapi.json) all come from these.

import { repairViewSchema, stuckReasonSchema } from "./health.ts";

const isoTime = z.string().openapi({ format: "date-time", example: "2026-12-03T10:00:00.000Z" });

export const errorBodySchema = z
  .object({ error: z.string().openapi({ example: "no run with id \"01J...\"" }), path: z.string().optional() })
  .openapi("Error");

export const serializedErrorSchema = z
  .object({
    name: z.string(),
    message: z.string(),
    stack: z.string().optional(),
    cause: z.unknown().optional().openapi({ description: "The error's cause: an error of this same shape (up to 5 deep), or the value it was" }),
  })
  .catchall(z.unknown())
  .openapi("SerializedError", { description: "An error, with its own enumerable fields (such as `code`) beside name and message" });

export const runStatusSchema = z.enum(["Queued", "Running", "Completed", "Failed", "Cancelled", "Skipped"]).openapi("RunStatus");

export const stepViewSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(["run", "sleep", "sendEvent", "waitForEvent", "invoke", "publish", "fetch"]).openapi({ description: "The step tool that made it" }),
    status: z.enum(["Completed", "Failed", "Sleeping", "Retrying", "Waiting"]),
    wake_at: isoTime.nullable().openapi({ description: "Until when a sleep, retry, wait or child run waits (for a resolved wait: when it was resolved)" }),
    attempts: z.number().int(),
    output: z.unknown(),
    error: serializedErrorSchema.nullable(),
    failed_attempts: z.array(z.object({ error: serializedErrorSchema, started_at: isoTime, ended_at: isoTime })).openapi({ description: "Each failed attempt, oldest first" }),
    started_at: isoTime,
    ended_at: isoTime.nullable(),
  })
  .openapi("Step");

/** A run as the runs index lists it: no output (that lives in the run's object). */
export const runIndexViewSchema = z
  .object({
    run_id: z.string(),
    function_id: z.string(),
    event_id: z.string(),
    status: runStatusSchema.openapi({ description: "Queued or Running until the run ends" }),
    run_started_at: isoTime,
    ended_at: isoTime.nullable(),
    parent_run_id: z.string().optional().openapi({ description: "For a run step.invoke started: the run that invoked it" }),
    skip_reason: z.string().nullable().optional().openapi({ description: "For a run flow control skipped (status Skipped): why" }),
    stuck_reason: stuckReasonSchema.optional().openapi({ description: "For an unfinished run the tick found stuck: why (GET /v1/health)" }),
    stuck_since: isoTime.optional(),
  })
  .openapi("RunListing");

export const runSummaryViewSchema = runIndexViewSchema
  .extend({
    output: z.unknown(),
    error: serializedErrorSchema.nullable(),
    scheduled_at: isoTime.optional().openapi({ description: "For a run a cron started: the time it was scheduled for" }),
  })
  .openapi("RunSummary");

export const eventViewSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    data: z.record(z.string(), z.unknown()),
    user: z.record(z.string(), z.unknown()).optional(),
    v: z.string().optional(),
    ts: z.number().int().openapi({ description: "Epoch ms" }),
    received_at: isoTime,
  })
  .openapi("Event");

export const runViewSchema = runSummaryViewSchema
  .extend({
    steps: z.array(stepViewSchema),
    events: z.array(eventViewSchema.omit({ received_at: true })).openapi({ description: "The events that started the run (a batch or debounce: several)" }),
    repairs: z.array(repairViewSchema).optional().openapi({ description: "What operators did to move it on, oldest first (absent when nothing)" }),
  })
  .openapi("Run");

export const runDetailSchema = runViewSchema
  .extend({ children: z.array(z.object({ run_id: z.string(), function_id: z.string(), status: runStatusSchema })).openapi({ description: "The runs it started with step.invoke" }) })
  .openapi("RunDetail");

export const functionViewSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    triggers: z.array(z.union([z.object({ event: z.string(), if: z.string().optional() }), z.object({ cron: z.string() })])),
    config: z.record(z.string(), z.unknown()).openapi({ description: "retries, flow control, timeouts, ... as the function declared them" }),
    paused: z.boolean(),
    pause_reason: z.string().optional().openapi({ description: "Why the engine paused it (a budget); absent when an operator did, or when it is not paused" }),
    crons: z.array(z.object({ cron: z.string(), timezone: z.string(), next_run_at: isoTime.nullable() })),
    stats: z.object({
      by_status: z.partialRecord(runStatusSchema, z.number().int()).openapi({ description: "Runs started in the last 24 hours, by status" }),
      cost_usd: z.number().openapi({ description: "Estimated cost of those runs that ended, in dollars at list price: the function's cost per day" }),
      hours: z.array(z.object({ hour: isoTime, runs: z.number().int(), failures: z.number().int() })).openapi({ description: "Per hour of the last 24 with runs" }),
    }),
  })
  .openapi("Function");

/** A page of a newest-first listing and the cursor of the next one (null: the last page). */
export function pageSchema<T extends z.ZodType>(item: T, name: string) {
  return z.object({ data: z.array(item), next_cursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last" }) }).openapi(name);
}

const listTime = z.union([z.iso.datetime({ offset: true }), z.coerce.number().int().nonnegative()]);
const limitSchema = z.coerce.number().int().min(1).max(500).default(50);
const cursorSchema = z.string().max(600).optional();

export const runsQuerySchema = z
  .object({
    function_id: z.string().min(1).max(255).optional(),
    status: z.string().max(200).optional().openapi({ description: "Comma-separated statuses, e.g. Failed,Running" }),
    started_after: listTime.optional().openapi({ description: "ISO 8601 or epoch ms, inclusive" }),
    started_before: listTime.optional().openapi({ description: "ISO 8601 or epoch ms, exclusive" }),
    stuck: z.union([stuckReasonSchema, z.literal("any")]).optional().openapi({ description: "Only unfinished runs the tick found stuck: for this reason, or any" }),
    cursor: cursorSchema,
    limit: limitSchema,
  })
  .strict();

export const eventsQuerySchema = z.object({ name: z.string().min(1).max(255).optional(), cursor: cursorSchema, limit: limitSchema }).strict();

export const invokeBodySchema = z.object({ data: z.record(z.string(), z.unknown()).default({}) }).strict().openapi("InvokeRequest");

export const rerunBodySchema = z
  .object({ from_step: z.string().min(1).max(1024).optional().openapi({ description: "A step's id or name: the new run reuses the outputs of the steps that ended before it" }) })
  .strict()
  .openapi("RerunRequest");

export const pauseBodySchema = z.object({ skip: z.boolean().optional().openapi({ description: "On resume, skip the events recorded while paused" }) }).strict().openapi("PauseRequest");

/** A message a handler published (step.publish), as a run's stream shows it. */
export const publishViewSchema = z
  .object({
    id: z.string().openapi({ description: "The id of the step that stored it: a client that hears it twice (a reconnect) keeps it once" }),
    topic: z.string(),
    data: z.unknown(),
    at: isoTime,
  })
  .openapi("Published");

export const cancellationViewSchema = z
  .object({
    id: z.string(),
    function_id: z.string(),
    started_after: isoTime,
    started_before: isoTime,
    if: z.string().nullable(),
    cancelled: z.number().int().openapi({ description: "Runs cancelled so far" }),
    status: z.enum(["Running", "Done"]),
  })
  .openapi("Cancellation");

export const sendAnswerSchema = z.object({ ids: z.array(z.string()).openapi({ description: "The events' ids, in the order sent" }), status: z.literal(200) }).openapi("SendAnswer");

/** `POST /v1/apps`: sync (or sync again) the app served at `url`. */
export const syncAppBodySchema = z
  .object({ url: z.string().url().openapi({ example: "http://127.0.0.1:3000/api/inngest", description: "The app's serve URL (where `serve()` of the inngest SDK answers)" }) })
  .strict()
  .openapi("SyncAppRequest");

export const appViewSchema = z
  .object({
    id: z.string().openapi({ description: "The SDK client's id" }),
    url: z.string(),
    framework: z.string().nullable(),
    sdk: z.string().nullable(),
    functions: z.array(z.object({ id: z.string(), name: z.string(), triggers: z.array(z.unknown()) })),
    synced_at: isoTime,
    error: z.string().nullable().openapi({ description: "The last failed sync's error, until a sync succeeds" }),
    error_at: isoTime.nullable(),
  })
  .openapi("App");

export type AppView = z.infer<typeof appViewSchema>;
export type PublishView = z.infer<typeof publishViewSchema>;
export type CancellationView = z.infer<typeof cancellationViewSchema>;
export type StepView = z.infer<typeof stepViewSchema>;
export type RunIndexView = z.infer<typeof runIndexViewSchema>;
export type RunSummaryView = z.infer<typeof runSummaryViewSchema>;
export type RunView = z.infer<typeof runViewSchema>;
export type EventView = z.infer<typeof eventViewSchema>;
export type FunctionView = z.infer<typeof functionViewSchema>;
