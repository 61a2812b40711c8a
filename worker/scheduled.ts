import { sweepUndispatchedEvents } from "./db/events.ts";
import { endRunStatement, markCheckedStatement, unfinishedRuns } from "./db/runs.ts";
import { FINAL_STATUSES } from "./messages.ts";
import type { Env } from "./env.ts";
import { sendMessages } from "./ingest.ts";
import { createLogger } from "./logger.ts";

export const TICK_MS = 60_000;
/** An event stored this long ago and still not dispatched was lost from the queue (DESIGN "Ingest"). */
export const REDISPATCH_AFTER_MS = 30_000;
/** An event re-enqueued once and still not dispatched (a backlog, or lost again) is sent again after this. */
export const RESWEEP_AFTER_MS = 5 * 60_000;
const SWEEP_LIMIT = 1000;
/** Unfinished runs whose objects one tick asks for their status. */
const INDEX_REPAIR_LIMIT = 50;

/**
 * One tick: re-enqueue events that are in the event log but were never dispatched, and repair
 * runs index rows whose end never arrived (under `wrangler dev` a queue's contents vanish when the
 * process dies). Dispatch is idempotent. Answers how many events it re-enqueued.
 */
export async function tick(env: Env, now = Date.now()): Promise<number> {
  const [redispatched] = await Promise.all([redispatchLostEvents(env, now), repairRunsIndex(env, now)]);
  return redispatched;
}

async function redispatchLostEvents(env: Env, now: number): Promise<number> {
  const ids = await sweepUndispatchedEvents(env.DB, now - REDISPATCH_AFTER_MS, now - RESWEEP_AFTER_MS, now, SWEEP_LIMIT);
  if (ids.length > 0) {
    await sendMessages(env, ids.map((id) => ({ type: "event-ref", id })));
    createLogger().info("re-enqueued undispatched events", { count: ids.length });
  }
  return ids.length;
}

/** Asks the objects of the least recently checked unfinished runs how they stand, and records ends. */
async function repairRunsIndex(env: Env, now: number): Promise<void> {
  const rows = await unfinishedRuns(env.DB, now - REDISPATCH_AFTER_MS, INDEX_REPAIR_LIMIT);
  if (rows.length === 0) return;
  const statements = await Promise.all(
    rows.map(async (row) => {
      const state = await env.RUNS.get(env.RUNS.idFromName(row.id)).status();
      if (!state || !FINAL_STATUSES.has(state.status)) return markCheckedStatement(env.DB, row.id, now);
      return endRunStatement(env.DB, { runId: row.id, functionId: row.function_id, eventId: row.event_id, status: state.status, startedAt: row.started_at, endedAt: state.endedAt });
    }),
  );
  await env.DB.batch(statements);
}

let schedulerArmed = false;

/** Makes sure the Scheduler's alarm is armed, once per isolate. */
export async function ensureScheduler(env: Env): Promise<void> {
  if (schedulerArmed) return;
  schedulerArmed = true;
  try {
    await env.SCHEDULER.get(env.SCHEDULER.idFromName("scheduler")).ensureTicking();
  } catch (err) {
    schedulerArmed = false;
    createLogger().error("could not arm the scheduler", { error: String(err) });
  }
}
