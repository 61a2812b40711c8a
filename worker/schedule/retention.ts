import { deleteRunKeysStatement, endedRunKeys } from "../db/endedRuns.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { sendMessages } from "../queue/send.ts";
import { runObject } from "../runs/door.ts";

// A run's retention (DESIGN "Retention"): the tick prunes its index row and, through the queue, has
// its object delete its records. The run's object needs no alarm of its own for it: a set alarm is a
// billed row, an object request at retention is not a row.

/** Run ids one expire-runs message carries at most: the consumer calls their objects at once. */
export const RUNS_PER_EXPIRE_MESSAGE = 100;

/**
 * Deletes up to `limit` index rows of runs on `shard` that ended before `before`, once their ids are
 * on the queue for their objects to delete their records (expireRuns); answers how many rows went. If
 * the send fails, the rows stay, and the next tick sends them again (expiring is idempotent).
 *
 * @example
 * const deleted = await pruneEndedRuns(env, env.DB, Date.now() - 30 * 86_400_000, 500);
 */
export async function pruneEndedRuns(env: Env, shard: D1Database, before: number, limit: number): Promise<number> {
  const keys = await endedRunKeys(shard, before, limit);
  if (keys.length === 0) return 0;
  // A skipped run never had an object: its row goes alone.
  const runIds = keys.filter((key) => key.status !== "Skipped").map((key) => key.id);
  const messages = [];
  for (let i = 0; i < runIds.length; i += RUNS_PER_EXPIRE_MESSAGE) messages.push({ type: "expire-runs" as const, runIds: runIds.slice(i, i + RUNS_PER_EXPIRE_MESSAGE) });
  try {
    await sendMessages(env, messages);
  } catch (err) {
    createLogger().error("could not send runs past retention to their objects; their index rows stay for the next tick", { runs: runIds.length, error: String(err) });
    return 0;
  }
  return (await deleteRunKeysStatement(shard, keys).run()).meta.changes;
}

/**
 * Has each run's object delete its records (RunObject.expire: a run not over stays); throws if any
 * call failed, so that the queue retries the message (an object already empty answers "absent").
 *
 * @example
 * await expireRuns(env, ["01J…", "01J…"]);
 */
export async function expireRuns(env: Env, runIds: readonly string[]): Promise<void> {
  const results = await Promise.allSettled(runIds.map((runId) => runObject(env, runId).expire()));
  const unfinished: string[] = [];
  const failed: string[] = [];
  results.forEach((result, i) => {
    if (result.status === "rejected") failed.push(`${runIds[i]}: ${String(result.reason)}`);
    else if (result.value === "unfinished") unfinished.push(runIds[i]!);
  });
  // Their index rows said they had ended; their objects, the record of truth, say not: they stay.
  if (unfinished.length > 0) createLogger().warn("runs past retention in the index are not over in their objects; kept", { run_ids: unfinished });
  if (failed.length > 0) throw new Error(`${failed.length} of ${runIds.length} runs' objects could not delete their records: ${failed.slice(0, 3).join("; ")}`);
}
