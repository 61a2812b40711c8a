import { Hono } from "hono";
import type { Env } from "../platform/env.ts";
import { faults, faultSwitchSchema, setFaults } from "../platform/faults.ts";
import { isDevMode } from "../platform/env.ts";
import { parseJsonBody } from "./body.ts";
import { jsonError } from "./errors.ts";
import { RUN_ID_PATTERN } from "../platform/runId.ts";
import { runObject } from "../runs/door.ts";

/**
 * Routes for tests and `npm run chaos`, in dev mode only: elsewhere they answer 404 like any
 * unknown route. `POST /v1/dev/faults` with `{ "d1"?: boolean, "queue"?: boolean }` takes D1 or
 * the Queue down (true) or back up (false); both routes answer the switch. `POST
 * /v1/dev/runs/:runId/drop-alarm` deletes a run's alarm (the stuck-run tests).
 *
 * @example
 * curl -X POST localhost:8787/v1/dev/faults -d '{"d1": true}' # {"data":{"d1":true,"queue":false}}
 */
export const devRoutes = new Hono<{ Bindings: Env }>();

devRoutes.use("/v1/dev/*", async (c, next) => (isDevMode(c.env) ? next() : c.notFound()));

devRoutes.get("/v1/dev/faults", (c) => c.json({ data: { ...faults } }));

devRoutes.post("/v1/dev/faults", async (c) => {
  const body = await parseJsonBody(c, faultSwitchSchema.partial(), "fault switch", '{ "d1"?: boolean, "queue"?: boolean }');
  return body.ok ? c.json({ data: setFaults(body.data) }) : body.response;
});

// The stuck-run tests' fault: the run's object loses its alarm, as a runtime that gave up retrying one would.
devRoutes.post("/v1/dev/runs/:runId/drop-alarm", async (c) => {
  const runId = c.req.param("runId");
  if (!RUN_ID_PATTERN.test(runId)) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  if (!(await runObject(c.env, runId).dropAlarm())) return jsonError(c, 404, `no run with id ${JSON.stringify(runId)}`);
  return c.json({ data: { dropped: true } });
});
