import { Hono } from "hono";
import { listRuns } from "../../db/runs.ts";
import type { Env } from "../../platform/env.ts";
import type { RunStatus } from "../../platform/types.ts";
import { rerun, RerunError } from "../../admin/rerun.ts";
import { RUN_ID_PATTERN } from "../../platform/runId.ts";
import { parseJsonBody, parseQuery } from "../body.ts";
import { errorResponse, jsonError } from "../errors.ts";
import { toRunIndexView } from "../../views/runView.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { rerunBodySchema, runStatusSchema, runsQuerySchema } from "../../views/schemas.ts";

/** `/v1/runs`: the runs index a page at a time, and re-runs. */
export const runsRoutes = new Hono<{ Bindings: Env }>();

// Newest first, from the runs index only: a listing never reads the runs' objects.
runsRoutes.get("/v1/runs", async (c) => {
  const query = parseQuery(c, runsQuerySchema);
  if (!query.ok) return query.response;
  const { function_id, status, started_after, started_before, stuck, cursor, limit } = query.data;
  const statuses: RunStatus[] = [];
  for (const name of status ? status.split(",").map((s) => s.trim()).filter(Boolean) : []) {
    const parsed = runStatusSchema.safeParse(name);
    if (!parsed.success) return jsonError(c, 400, `invalid query parameter status: ${JSON.stringify(name)} is not one of ${runStatusSchema.options.join(", ")}`, "status");
    statuses.push(parsed.data);
  }
  const after = cursor === undefined ? null : decodeCursor(cursor);
  if (cursor !== undefined && !after) return jsonError(c, 400, "invalid query parameter cursor: pass the next_cursor of the page before, unchanged", "cursor");
  const page = await listRuns(
    c.env,
    {
      ...(function_id !== undefined ? { functionId: function_id } : {}),
      statuses,
      ...(started_after !== undefined ? { startedAfter: toEpoch(started_after) } : {}),
      ...(started_before !== undefined ? { startedBefore: toEpoch(started_before) } : {}),
      ...(stuck !== undefined ? { stuck } : {}),
    },
    after,
    limit,
  );
  return c.json({ data: page.rows.map(toRunIndexView), next_cursor: encodeCursor(page.next) });
});

/** A new run from the same trigger events; with `from_step`, reusing the steps that ended before that one. */
runsRoutes.post("/v1/runs/:runId/rerun", async (c) => {
  const runId = c.req.param("runId");
  if (!RUN_ID_PATTERN.test(runId)) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  const text = await c.req.text();
  const body = text.trim() === "" ? { ok: true as const, data: {} } : await parseJsonBody(c, rerunBodySchema, "rerun", '{ "from_step"?: string }', text);
  if (!body.ok) return body.response;
  try {
    const { runId: newRunId } = await rerun(c.env, runId, body.data.from_step);
    return c.json({ data: { run_id: newRunId } }, 201);
  } catch (err) {
    if (err instanceof RerunError) return errorResponse(c, err);
    throw err;
  }
});

/** ISO 8601 text or epoch ms, as epoch ms. */
export function toEpoch(value: string | number): number {
  return typeof value === "number" ? value : Date.parse(value);
}
