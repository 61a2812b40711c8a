import { FINAL_STATUSES } from "../platform/types.ts";
import type { RunStore } from "./RunStore.ts";

// A run's records going at the end of its retention (DESIGN "Retention"): asked by the tick, through
// the queue, when it prunes the run's index row (schedule/retention.ts); or, for an object of an
// earlier release, by the retention alarm it still holds.

/** What expiring a run's object found: a run that is over, deleted; one not over, kept; or no run (deleted already, or never had). */
export type ExpireOutcome = "deleted" | "unfinished" | "absent";

/** Deletes a run's records: its values in R2, its alarm and its storage, tables and all. */
export async function deleteRunRecords(store: RunStore, storage: DurableObjectStorage): Promise<void> {
  await store.deleteValues();
  await storage.deleteAlarm();
  await storage.deleteAll();
  store.clear();
}

/** Deletes the run's records if it is over; a run not over is never deleted. Idempotent. */
export async function expireRun(store: RunStore, storage: DurableObjectStorage): Promise<ExpireOutcome> {
  const run = store.run();
  if (!run) return "absent";
  if (!FINAL_STATUSES.has(run.status)) return "unfinished";
  await deleteRunRecords(store, storage);
  return "deleted";
}
