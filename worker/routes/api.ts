import { Hono } from "hono";
import { nameSchema } from "../../sdk/event.ts";
import { getEvent } from "../db/events.ts";
import { childrenOf, findRun, runsOfEvent } from "../db/runs.ts";
import type { Env } from "../platform/env.ts";
import { RUN_ID_PATTERN } from "../platform/runId.ts";
import { usage } from "../platform/usage.ts";
import { runObject, unlistedRunIds } from "../runs/door.ts";
import { runIdScheme } from "../db/runIdScheme.ts";
import { loadRemoteFunctions } from "../remote/apps.ts";
import type { RunWithSteps } from "../runs/RunObject.ts";
import type { RunRecord } from "../runs/RunStore.ts";
import { skippedRunStream } from "../runs/runStream.ts";
import { SSE_HEADERS } from "../views/sse.ts";
import { stuckFields, toRunIndexView, toRunSummaryView, toRunView, toSkippedRunView, type RunView } from "../views/runView.ts";
import { requireSigningKey } from "./auth.ts";
import { eventsRoutes } from "./api/events.ts";
import { functionsRoutes } from "./api/functions.ts";
import { runsRoutes } from "./api/runs.ts";
import { appsRoutes } from "./api/apps.ts";
import { healthRoutes } from "./api/health.ts";
import { openApiDocument } from "./api/openapi.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { parseJsonBody } from "./body.ts";
import { CancellationError, cancellationRequestSchema, getCancellation, startCancellation } from "../admin/cancellations.ts";
import { resolveEventData } from "../platform/largeValues.ts";

/**
 * The REST API (Inngest's shapes). D1 says which runs exist; each run's RunObject, its record
 * of truth, answers for its status, output and steps.
 */
export const apiRoutes = new Hono<{ Bindings: Env }>();

// The API's description is public: it says nothing a reader of this repository does not know.
apiRoutes.get("/v1/openapi.json", (c) => c.json(openApiDocument()));

apiRoutes.use("/v1/*", requireSigningKey);

apiRoutes.route("/", functionsRoutes);
apiRoutes.route("/", runsRoutes);
apiRoutes.route("/", eventsRoutes);
apiRoutes.route("/", appsRoutes);
apiRoutes.route("/", healthRoutes);

/** Billable operations counted by this isolate (worker/platform/usage.ts); `npm run bench` reads them. */
apiRoutes.get("/v1/usage", (c) => c.json({ data: usage }));

// An id sent again after the 24 h dedup window names several events: this answers the newest.
apiRoutes.get("/v1/events/:eventId", async (c) => {
  const id = c.req.param("eventId");
  const found = nameSchema.safeParse(id).success ? await getEvent(c.env, id) : null;
  if (!found) return jsonError(c, 404, `no event with id ${JSON.stringify(id)}`);
  await resolveEventData(c.env, [found]);
  const { event, receivedAt } = found;
  return c.json({ data: { ...event, received_at: new Date(receivedAt).toISOString() } });
});

// The runs of every event with this id, oldest first (an id sent again after 24 h names several).
apiRoutes.get("/v1/events/:eventId/runs", async (c) => {
  const id = c.req.param("eventId");
  const found = nameSchema.safeParse(id).success ? await getEvent(c.env, id) : null;
  if (!found) return jsonError(c, 404, `no event with id ${JSON.stringify(id)}`);
  const [rows, , idFor] = await Promise.all([runsOfEvent(c.env, id, found.receipts), loadRemoteFunctions(c.env), runIdScheme(c.env)]);
  // A run in its first second may not be listed yet: the newest event's runs are asked for by id too.
  const unlisted = unlistedRunIds(found, new Set(rows.map((row) => row.id)), idFor);
  // A listing reads each run's record only, never its steps (up to 32 MiB of outputs per run).
  const summary = async (runId: string) => {
    const run = (await runObject(c.env, runId).summary()) as RunRecord | null;
    return run ? toRunSummaryView(run) : null;
  };
  // An object that cannot answer now (its runtime restarting): a listed run shows its index row, an unlisted one is left out, as unknown.
  const listed = rows.map((row) => (row.status === "Skipped" ? toSkippedRunView(row) : summary(row.id).catch(() => toRunIndexView(row))));
  const runs = await Promise.all([...listed, ...unlisted.map((runId) => summary(runId).catch(() => null))]);
  return c.json({ data: runs.filter((run) => run !== null) });
});

apiRoutes.get("/v1/runs/:runId", async (c) => {
  const runId = c.req.param("runId");
  const run = await indexedRun(c.env, runId);
  if (!run) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  // The runs it started with step.invoke, from the runs index.
  const children = (await childrenOf(c.env, runId)).map((row) => ({ run_id: row.id, function_id: row.function_id, status: row.status }));
  return c.json({ data: { ...run, children } });
});

/**
 * The run's live stream (server-sent events, answered by its RunObject): `run`, a `step` or
 * `publish` per stored step, then each change as it happens, and `end` when the run ends.
 */
apiRoutes.get("/v1/runs/:runId/stream", async (c) => {
  const runId = c.req.param("runId");
  if (!RUN_ID_PATTERN.test(runId)) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  const row = await findRun(c.env, runId);
  // A skipped run has no object: its index row is its whole story.
  if (row?.status === "Skipped") {
    const { steps: _none, ...run } = toSkippedRunView(row);
    return new Response(skippedRunStream(run), { headers: SSE_HEADERS });
  }
  const response = await runObject(c.env, runId).fetch(c.req.raw);
  return response.status === 404 ? jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`) : response;
});

apiRoutes.delete("/v1/runs/:runId", async (c) => {
  const runId = c.req.param("runId");
  if (!(await indexedRun(c.env, runId))) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  // RPC types cannot carry `unknown` outputs: the object answers a RunWithSteps.
  const found = (await runObject(c.env, runId).cancel()) as RunWithSteps | null;
  return c.json({ data: found ? toRunView(found.run, found.steps) : null });
});

/**
 * Cancels runs in bulk, a page at a time in the background (Inngest's shape): every unfinished
 * run of `function_id` started between `started_after` and `started_before` (ISO 8601 or epoch
 * ms; default: ever, and now) whose trigger event satisfies `if`. Answers 201 with its progress.
 */
apiRoutes.post("/v1/cancellations", async (c) => {
  const body = await parseJsonBody(c, cancellationRequestSchema, "cancellation", '{ "function_id": string, "started_after"?: string, "started_before"?: string, "if"?: string }');
  if (!body.ok) return body.response;
  try {
    return c.json({ data: await startCancellation(c.env, body.data) }, 201);
  } catch (err) {
    if (err instanceof CancellationError) return errorResponse(c, err);
    throw err;
  }
});

apiRoutes.get("/v1/cancellations/:id", async (c) => {
  const id = c.req.param("id");
  const found = nameSchema.safeParse(id).success ? await getCancellation(c.env, id) : null;
  return found ? c.json({ data: found }) : jsonError(c, 404, `no cancellation with id ${JSON.stringify(id)}`);
});

/** A run the runs index knows, read from its RunObject; null for anything else. */
/**
 * A run by id: a skipped run from its row of the runs index (it has no object), any other from its
 * object, which knows it before the index does (a short run writes its row with its end).
 */
async function indexedRun(env: Env, runId: string): Promise<RunView | null> {
  if (!RUN_ID_PATTERN.test(runId)) return null;
  const row = await findRun(env, runId);
  if (row?.status === "Skipped") return toSkippedRunView(row);
  const run = await readRun(env, runId);
  // The tick's verdict, while the run has not ended: its object does not know it is stuck.
  return run && row && (run.status === "Queued" || run.status === "Running") ? { ...run, ...stuckFields(row) } : run;
}

async function readRun(env: Env, runId: string): Promise<RunView | null> {
  const found = (await runObject(env, runId).getRun()) as RunWithSteps | null;
  return found ? toRunView(found.run, found.steps) : null;
}
