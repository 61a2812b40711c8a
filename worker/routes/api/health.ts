import { Hono } from "hono";
import { bulkRepairRequestSchema, repairRequestSchema, repointRequestSchema, repairRun, repairRuns, type RepairRequest } from "../../admin/repair.ts";
import { stuckCounts } from "../../db/runs.ts";
import type { Env } from "../../platform/env.ts";
import { RUN_ID_PATTERN } from "../../platform/runId.ts";
import { StepflareError } from "../../platform/errors.ts";
import { healthView } from "../../views/health.ts";
import { parseJsonBody } from "../body.ts";
import { errorResponse, jsonError } from "../errors.ts";
import type { Context } from "hono";

/** `/v1/health` and the repairs of stuck runs (docs/production.md "Stuck runs"). */
export const healthRoutes = new Hono<{ Bindings: Env }>();

// Stuck runs by reason, as the tick last found them, with the listing of each.
healthRoutes.get("/v1/health", async (c) => c.json({ data: healthView(await stuckCounts(c.env)) }));

// Several runs at once, the same repair for each (the Health page's bulk actions).
healthRoutes.post("/v1/runs/repair", async (c) => {
  const body = await parseJsonBody(c, bulkRepairRequestSchema, "repair", '{ "action": "wake" | "cancel" | "rerun" | "repoint", "run_ids": string[], "function_id"?: string, "from_step"?: string }');
  if (!body.ok) return body.response;
  const { run_ids, ...request } = body.data;
  return answer(c, async () => c.json({ data: await repairRuns(c.env, run_ids, request) }));
});

// One run: any repair, or its short forms wake and repoint.
healthRoutes.post("/v1/runs/:runId/repair", async (c) => {
  const body = await parseJsonBody(c, repairRequestSchema, "repair", '{ "action": "wake" | "cancel" | "rerun" | "repoint", "function_id"?: string, "from_step"?: string }');
  return body.ok ? repairOne(c, body.data) : body.response;
});

healthRoutes.post("/v1/runs/:runId/wake", (c) => repairOne(c, { action: "wake" }));

healthRoutes.post("/v1/runs/:runId/repoint", async (c) => {
  const body = await parseJsonBody(c, repointRequestSchema, "repoint", '{ "function_id": string }');
  return body.ok ? repairOne(c, { action: "repoint", function_id: body.data.function_id }) : body.response;
});

async function repairOne(c: Context<{ Bindings: Env }>, request: RepairRequest): Promise<Response> {
  const runId = c.req.param("runId") ?? "";
  if (!RUN_ID_PATTERN.test(runId)) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  return answer(c, async () => c.json({ data: await repairRun(c.env, runId, request) }));
}

/** A repair's answer, or its error (no such run or function, a rerun refused) as a 4xx. */
async function answer(c: Context<{ Bindings: Env }>, work: () => Promise<Response>): Promise<Response> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof StepflareError) return errorResponse(c, err);
    throw err;
  }
}
