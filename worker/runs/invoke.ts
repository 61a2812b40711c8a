import { ulid } from "ulidx";
import { engineEventId, type StoredEvent } from "../../sdk/event.ts";
import type { StepflareFunction } from "../../sdk/function.ts";
import { startDirectRun } from "./door.ts";
import type { Env } from "../platform/env.ts";
import type { RunStatus } from "../platform/types.ts";
import type { RunParent } from "./RunStore.ts";
import { runIdFor } from "../platform/runId.ts";
import { runIdScheme, type RunIdScheme } from "../db/runIdScheme.ts";

/** The event a run started directly receives (Inngest's name for an invocation). */
export const FUNCTION_INVOKED_EVENT = "inngest/function.invoked";

/**
 * Starts a run of `fn` now with `data`, without matching any trigger (the service binding's
 * `invoke`, and `step.invoke`'s child). A child's id derives from its parent
 * and step, so an invoke delivered twice starts one child; other invocations get a fresh id. A
 * child's event is `depth` deep in its chain of events (runs/depth.ts); others start one at 0.
 *
 * @example
 * const { runId } = await startInvokedRun(env, fn, { orderId: "o1" });
 */
export async function startInvokedRun(env: Env, fn: StepflareFunction, data: Record<string, unknown>, parent?: RunParent, depth = 0): Promise<{ runId: string; status: RunStatus }> {
  const now = Date.now();
  const runId = parent ? childRunId(fn.id, parent, await runIdScheme(env)) : runIdFor(fn.id, ulid(), now);
  const event: StoredEvent = { id: parent ? engineEventId(runId, "invoked") : ulid(), name: FUNCTION_INVOKED_EVENT, data, ts: now, ...(depth > 0 ? { depth } : {}) };
  const entry = await startDirectRun(env, { runId, functionId: fn.id, events: [event], startAt: now, startedAt: now, ...(parent ? { parent } : {}) });
  return { runId, status: entry.status };
}

/** The id of the child run that step `parent.stepId` of `parent.runId` invokes. */
export function childRunId(functionId: string, parent: RunParent, idFor: RunIdScheme = runIdFor): string {
  return idFor(functionId, `${parent.runId}/${parent.stepId}`, 0);
}
