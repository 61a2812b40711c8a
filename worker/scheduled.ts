import { undispatchedEventIds } from "./db/events.ts";
import type { Env } from "./env.ts";
import { sendMessages } from "./ingest.ts";

export const TICK_MS = 60_000;
/** An event stored this long ago and still not dispatched was lost from the queue (DESIGN "Ingest"). */
export const REDISPATCH_AFTER_MS = 30_000;
const SWEEP_LIMIT = 1000;

/**
 * One tick: re-enqueue events that are in the event log but were never dispatched (under
 * `wrangler dev` a queue's contents vanish when the process dies). Dispatch is idempotent.
 */
export async function tick(env: Env, now = Date.now()): Promise<number> {
  const ids = await undispatchedEventIds(env.DB, now - REDISPATCH_AFTER_MS, SWEEP_LIMIT);
  if (ids.length > 0) {
    await sendMessages(env, ids.map((id) => ({ type: "event-ref", id })));
    console.log(JSON.stringify({ level: "info", message: "re-enqueued undispatched events", count: ids.length }));
  }
  return ids.length;
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
    console.error(JSON.stringify({ level: "error", message: "could not arm the scheduler", error: String(err) }));
  }
}
