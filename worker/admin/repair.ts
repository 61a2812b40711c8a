import { z } from "zod";
import { clearStuckStatements } from "../db/runs.ts";
import { shardsHolding, ShardWrites } from "../db/shards.ts";
import type { Env } from "../platform/env.ts";
import { StepflareError } from "../platform/errors.ts";
import { findFunction } from "../platform/registry.ts";
import { RUN_ID_PATTERN } from "../platform/runId.ts";
import type { RunStatus } from "../platform/types.ts";
import { loadRemoteFunctions } from "../remote/apps.ts";
import { runObject } from "../runs/door.ts";
import { rerun } from "./rerun.ts";

// Repairs of stuck runs (docs/production.md "Stuck runs"): wake a run now, cancel it, rerun it from a
// step, or re-point it to a function that now has another id. Each is idempotent, recorded on the
// run's own record (its timeline), and clears the run's stuck verdict in the runs index until the
// tick's next check says otherwise.

export const REPAIR_ACTIONS = ["wake", "cancel", "rerun", "repoint"] as const;
/** The most runs one bulk repair names (each is a call to its run's object). */
export const MAX_BULK_REPAIR = 100;

const runIdSchema = z.string().regex(RUN_ID_PATTERN, "must be a run id (a ULID, or 32 hex characters for a run started by 0.1)");
const functionIdSchema = z.string().min(1).max(255);

/** A repair of one run: `POST /v1/runs/:runId/repair`'s body. */
export const repairRequestSchema = z
  .object({
    action: z.enum(REPAIR_ACTIONS),
    function_id: functionIdSchema.optional(),
    from_step: z.string().min(1).max(1024).optional(),
  })
  .strict()
  .refine((body) => body.action !== "repoint" || body.function_id !== undefined, { message: "a repoint needs function_id: the id of the registered function the run should run", path: ["function_id"] });
export type RepairRequest = z.output<typeof repairRequestSchema>;

/** `POST /v1/runs/:runId/repoint`'s body. */
export const repointRequestSchema = z.object({ function_id: functionIdSchema }).strict();

/** A repair of several runs at once: `POST /v1/runs/repair`'s body. */
export const bulkRepairRequestSchema = z
  .object({
    action: z.enum(REPAIR_ACTIONS),
    run_ids: z.array(runIdSchema).min(1).max(MAX_BULK_REPAIR),
    function_id: functionIdSchema.optional(),
    from_step: z.string().min(1).max(1024).optional(),
  })
  .strict()
  .refine((body) => body.action !== "repoint" || body.function_id !== undefined, { message: "a repoint needs function_id: the id of the registered function the runs should run", path: ["function_id"] });

/** What a repair did to a run: its status after it, and for a rerun the new run. */
export interface RepairResult {
  run_id: string;
  status: RunStatus;
  new_run_id?: string;
}

/** A repair the API refuses: no such run, or no such function to re-point it to. */
export class RepairError extends StepflareError {
  override name = "RepairError";
}

/**
 * Repairs one run. `wake` makes it due now (its wake time and a retry's backoff brought forward);
 * `cancel` cancels it; `rerun` starts a new run from its events (from `from_step` if given; the same
 * rerun asked again starts nothing more) and cancels this one if it has not ended; `repoint` runs it
 * as `function_id` from its stored steps. A run that has ended is left as it is (a rerun excepted).
 *
 * @example
 * await repairRun(env, "0f3a…", { action: "repoint", function_id: "send-invoice-v2" });
 */
export async function repairRun(env: Env, runId: string, request: RepairRequest): Promise<RepairResult> {
  const stub = runObject(env, runId);
  if (request.action === "repoint") await requireFunction(env, request.function_id!);
  let status: RunStatus | null;
  let newRunId: string | undefined;
  // The function the run's index row moves to: a re-pointed run's new one (not one that had ended).
  let movedTo: string | undefined;
  switch (request.action) {
    case "wake":
      status = await stub.wake();
      break;
    case "cancel":
      status = await stub.repairCancel();
      break;
    case "repoint": {
      const repointed = await stub.repoint(request.function_id!);
      status = repointed?.status ?? null;
      if (repointed?.repointed) movedTo = request.function_id;
      break;
    }
    case "rerun": {
      if (!(await stub.summary())) throw notFound(runId);
      newRunId = (await rerun(env, runId, request.from_step, `${runId}:${request.from_step ?? ""}`)).runId;
      status = await stub.repairCancel(newRunId);
      break;
    }
  }
  if (status === null) throw notFound(runId);
  const writes = new ShardWrites();
  for (const shard of await shardsHolding(env, runId)) writes.add(shard, ...clearStuckStatements(shard, runId, movedTo));
  await writes.write(env);
  return { run_id: runId, status, ...(newRunId ? { new_run_id: newRunId } : {}) };
}

/** Repairs each run of `runIds` the same way; a run that cannot be repaired answers its error beside the others. */
export async function repairRuns(env: Env, runIds: string[], request: RepairRequest): Promise<(RepairResult | { run_id: string; error: string })[]> {
  if (request.action === "repoint") await requireFunction(env, request.function_id!);
  return Promise.all(
    [...new Set(runIds)].map((runId) =>
      repairRun(env, runId, request).catch((err: unknown) => {
        if (err instanceof StepflareError) return { run_id: runId, error: err.message };
        throw err;
      }),
    ),
  );
}

async function requireFunction(env: Env, functionId: string): Promise<void> {
  await loadRemoteFunctions(env);
  if (!findFunction(functionId)) throw new RepairError("function.not_found", `no function with id ${JSON.stringify(functionId)} is registered: re-point the run to one of GET /v1/functions`, "function_id");
}

function notFound(runId: string): RepairError {
  return new RepairError("run.not_found", `no run with id ${JSON.stringify(runId)}`);
}
