import { ulid } from "ulidx";
import type { StepRecord } from "../../sdk/run.ts";
import { runObject, startDirectRun } from "../runs/door.ts";
import type { Env } from "../platform/env.ts";
import { StepflareError } from "../platform/errors.ts";
import type { RunWithSteps } from "../runs/RunObject.ts";
import { findFunction } from "../platform/registry.ts";
import { runIdFor } from "../platform/runId.ts";
import { runIdScheme } from "../db/runIdScheme.ts";

/** Why a run cannot be re-run, with a message that says what to do. */
export class RerunError extends StepflareError {
  override name = "RerunError";
}

/**
 * Starts a new run of `runId`'s function with its trigger events (the dashboard's "Rerun"). With
 * `fromStep` (a step's id or name), the new run reuses what the steps that ended before that step
 * stored, and runs that step and the rest again. With `key`, a rerun asked again with the same key
 * starts no second run. Answers the new run's id.
 *
 * @example
 * const { runId } = await rerun(env, "01J...", "charge-card");
 */
export async function rerun(env: Env, runId: string, fromStep?: string, key?: string): Promise<{ runId: string }> {
  const found = (await runObject(env, runId).getRun()) as RunWithSteps | null;
  if (!found) throw new RerunError("run.not_found", `no run with id ${JSON.stringify(runId)}`);
  const { run, steps } = found;
  const fn = findFunction(run.functionId);
  if (!fn) throw new RerunError("function.not_found", `function ${JSON.stringify(run.functionId)} is not registered in this Worker any more`);
  const memo = fromStep === undefined ? [] : stepsBefore(steps, fromStep);
  const now = Date.now();
  // With a key (a repair), the same key names the same new run: asking twice starts it once.
  const newRunId = key === undefined ? runIdFor(fn.id, `rerun:${ulid()}`, now) : (await runIdScheme(env))(fn.id, `rerun:${key}`, 0);
  await startDirectRun(env, { runId: newRunId, functionId: fn.id, events: run.events, startAt: now, startedAt: now, ...(memo.length ? { memo } : {}) });
  return { runId: newRunId };
}

/**
 * The steps a re-run from `from` keeps: those that completed before it (by completion order, or
 * for a resolved wait or a sleep, by time), so the handler takes the same path up to it.
 */
function stepsBefore(steps: StepRecord[], from: string): StepRecord[] {
  const chosen = steps.find((step) => step.id === from || step.name === from);
  if (!chosen) throw new RerunError("request.invalid", `the run has no step ${JSON.stringify(from)}: pass a step id or name from GET /v1/runs/:runId`);
  if (chosen.status !== "completed" && chosen.status !== "failed") {
    throw new RerunError("request.invalid", `step ${JSON.stringify(chosen.name)} is ${chosen.status}: re-run from a step that has completed or failed`);
  }
  const endedBefore = (step: StepRecord) =>
    step.seq !== undefined && chosen.seq !== undefined ? step.seq < chosen.seq : (step.wakeAt ?? step.endedAt ?? Infinity) < chosen.startedAt;
  return steps.filter((step) => step.id !== chosen.id && (step.status === "completed" || (step.status === "sleeping" && step.wakeAt! <= chosen.startedAt)) && endedBefore(step));
}
