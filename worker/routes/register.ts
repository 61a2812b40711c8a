import { Hono } from "hono";
import type { Env } from "../platform/env.ts";
import { storeRegistration, SyncError } from "../remote/apps.ts";
import { requireAppKey } from "./appAuth.ts";
import { z } from "zod";
import { RUN_ID_PATTERN } from "../platform/runId.ts";
import { formatBytes, MAX_ANSWER_BYTES, readBounded } from "../remote/bounds.ts";
import { checkpointAnswer } from "../remote/checkpoints.ts";
import { opsSchema } from "../remote/wire.ts";
import { parseJsonBody } from "./body.ts";
import { HTTP_STATUS, jsonError } from "./errors.ts";
import { runObject } from "../runs/door.ts";

/**
 * `POST /fn/register`: where the `inngest` SDK sends its functions when an app is synced out of
 * band (a `PUT` to its serve URL, from `POST /v1/apps` or from anyone). The SDK answers that `PUT`
 * with the `status` and `error` of this body, not its HTTP status (protocol §1).
 */
export const registerRoutes = new Hono<{ Bindings: Env }>();

registerRoutes.post("/fn/register", requireAppKey, async (c) => {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return c.json({ status: 400, error: "the sync's body is not valid JSON" }, 400);
  }
  try {
    const { app, modified } = await storeRegistration(c.env, body);
    return c.json({ ok: true, status: 200, modified, app_id: app.id });
  } catch (err) {
    // The SDK reads `status` and `error` from the answer to its PUT (protocol §1).
    if (err instanceof SyncError) return c.json({ status: HTTP_STATUS[err.code], error: err.message }, HTTP_STATUS[err.code]);
    throw err;
  }
});

const checkpointBodySchema = z.object({ run_id: z.string().min(1), qi_id: z.string().min(1), steps: opsSchema }).passthrough();

/**
 * `POST /v1/checkpoint/:runId/async`: an SDK in the middle of a call reports the steps it ran
 * (Inngest v4's checkpointing, on by default), so consecutive steps run in one call. A 409 tells it
 * to stop, as on Inngest: the call is no longer the run's (its invocation ended or died), the run
 * was cancelled, or a step was refused (its output over a limit); the run goes on from its next call.
 */
registerRoutes.post("/v1/checkpoint/:runId/async", requireAppKey, async (c) => {
  const text = await readBounded(c.req.raw.body, MAX_ANSWER_BYTES, undefined, c.req.header("content-length"));
  if (!text.ok) return jsonError(c, 413, `the checkpoint is over ${formatBytes(MAX_ANSWER_BYTES)}, the limit of a checkpoint: return a reference to large data, not the data`);
  const body = await parseJsonBody(c, checkpointBodySchema, "checkpoint", "{ run_id, qi_id, steps: [ops] }", text.text);
  if (!body.ok) return body.response;
  const runId = c.req.param("runId");
  if (!RUN_ID_PATTERN.test(runId)) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  const { status, body: answer } = checkpointAnswer(await runObject(c.env, runId).checkpoint(body.data.qi_id, body.data.steps));
  return c.json(answer, status);
});
