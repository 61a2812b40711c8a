import { Hono } from "hono";
import { triggerCronNow } from "../../schedule/crons.ts";
import { functionStats, type FunctionStats } from "../../db/runs.ts";
import type { Env } from "../../platform/env.ts";
import { startInvokedRun } from "../../runs/invoke.ts";
import { pauseReasons } from "../../db/pauses.ts";
import { pauseFunction, resumeFunction } from "../../admin/pauses.ts";
import { allFunctions, findFunction } from "../../platform/registry.ts";
import { parseJsonBody, readBodyText, SMALL_BODY_BYTES } from "../body.ts";
import { MAX_EVENT_BYTES } from "../../ingest/ingest.ts";
import { jsonError } from "../errors.ts";
import { invokeBodySchema, pauseBodySchema, type FunctionView } from "../../views/schemas.ts";

/** How far back a function's counts and chart reach. */
const STATS_WINDOW_MS = 24 * 3_600_000;

/** `/v1/functions`: the registry with each function's recent runs, and what can be done to a function. */
export const functionsRoutes = new Hono<{ Bindings: Env }>();

functionsRoutes.get("/v1/functions", async (c) => {
  const now = Date.now();
  const [paused, stats] = await Promise.all([pauseReasons(c.env), functionStats(c.env, now - STATS_WINDOW_MS)]);
  const data: FunctionView[] = allFunctions().map((fn) => ({
    id: fn.id,
    name: fn.name,
    triggers: fn.triggers,
    config: fn.settings,
    paused: paused.has(fn.id),
    ...(paused.get(fn.id) ? { pause_reason: paused.get(fn.id)! } : {}),
    // When each cron trigger fires next.
    crons: fn.crons.map((schedule) => ({ cron: schedule.source, timezone: schedule.timezone, next_run_at: isoOrNull(schedule.nextAfter(now)) })),
    stats: statsView(stats.get(fn.id)),
  }));
  return c.json({ data });
});

/** Starts a run now with `data`, matching no trigger (its event is `inngest/function.invoked`): the dashboard's "Invoke". */
functionsRoutes.post("/v1/functions/:functionId/invoke", async (c) => {
  const fn = findFunction(c.req.param("functionId"));
  if (!fn) return jsonError(c, 404, `no function with id ${JSON.stringify(c.req.param("functionId"))}`);
  // The data becomes the run's event: an event's limit holds for it.
  const read = await readBodyText(c, MAX_EVENT_BYTES, `request body is over ${MAX_EVENT_BYTES} bytes (512 KiB), the limit of an event, which the invoke's data becomes`);
  if (!read.ok) return read.response;
  const text = read.text;
  const body = text.trim() === "" ? { ok: true as const, data: { data: {} } } : await parseJsonBody(c, invokeBodySchema, "invoke", '{ "data"?: object }', text);
  if (!body.ok) return body.response;
  const { runId } = await startInvokedRun(c.env, fn, body.data.data);
  return c.json({ data: { run_id: runId } }, 201);
});

/** Runs a cron function now, as its schedule would (the dashboard's "Run now"); answers the run's id. */
functionsRoutes.post("/v1/functions/:functionId/trigger", async (c) => {
  const id = c.req.param("functionId");
  const fn = findFunction(id);
  if (!fn) return jsonError(c, 404, `no function with id ${JSON.stringify(id)}`);
  if (fn.crons.length === 0) return jsonError(c, 400, `function ${JSON.stringify(id)} has no cron trigger: send it an event instead`);
  const run = await triggerCronNow(c.env, fn, Date.now());
  return c.json({ data: { run_id: run.runId, function_id: fn.id, event_id: run.eventId } });
});

/**
 * Pauses a function: its events are recorded and its runs not started until it is resumed (then
 * in order; with `{ "skip": true }`, skipped instead). Runs already started go on.
 */
functionsRoutes.post("/v1/functions/:functionId/pause", async (c) => {
  const fn = findFunction(c.req.param("functionId"));
  if (!fn) return jsonError(c, 404, `no function with id ${JSON.stringify(c.req.param("functionId"))}`);
  const read = await readBodyText(c, SMALL_BODY_BYTES, `request body is over ${SMALL_BODY_BYTES} bytes, the limit of a pause's options`);
  if (!read.ok) return read.response;
  const text = read.text;
  const body = text.trim() === "" ? { ok: true as const, data: {} } : await parseJsonBody(c, pauseBodySchema, "pause", '{ "skip"?: boolean }', text);
  if (!body.ok) return body.response;
  await pauseFunction(c.env, fn, body.data.skip ?? false);
  return c.json({ data: { function_id: fn.id, paused: true, skip: body.data.skip ?? false } });
});

functionsRoutes.post("/v1/functions/:functionId/resume", async (c) => {
  const fn = findFunction(c.req.param("functionId"));
  if (!fn) return jsonError(c, 404, `no function with id ${JSON.stringify(c.req.param("functionId"))}`);
  const resumed = await resumeFunction(c.env, fn);
  return resumed ? c.json({ data: { function_id: fn.id, paused: false, skipped: resumed.skip } }) : jsonError(c, 409, `function ${JSON.stringify(fn.id)} is not paused`);
});

function statsView(stats: FunctionStats | undefined): FunctionView["stats"] {
  return { by_status: stats?.byStatus ?? {}, cost_usd: stats?.costUsd ?? 0, hours: (stats?.hours ?? []).map((h) => ({ hour: new Date(h.hour).toISOString(), runs: h.runs, failures: h.failures })) };
}

function isoOrNull(time: number | null): string | null {
  return time === null ? null : new Date(time).toISOString();
}
