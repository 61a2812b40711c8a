import type { Env } from "../platform/env.ts";
import { runIdFor } from "../platform/runId.ts";

// When this deployment's run ids became ULIDs (migration 0020 sets it: an hour after it ran on a
// database that held runs, else at once). A value that never changes: read once per isolate, on DB.

/** By database binding: a test may give a deployment's code another database as DB. */
const ulidRunsSince = new WeakMap<D1Database, Promise<number>>();

/** How run ids are derived here: runIdFor, with the time from which they are ULIDs. */
export type RunIdScheme = (functionId: string, eventId: string, at: number) => string;

/**
 * This deployment's run id derivation (platform/runId.ts), for what derives a run's id from what
 * started it: an event's runs, a batch's or a debounce's, a cron's, a child's, a keyed rerun.
 *
 * @example
 * const idFor = await runIdScheme(env);
 * idFor("hello", event.id, receivedAt);
 */
export async function runIdScheme(env: Env): Promise<RunIdScheme> {
  let since = ulidRunsSince.get(env.DB);
  if (!since) {
    since = env.DB.prepare("SELECT ulid_runs_since AS at FROM sweep_cursor WHERE id = 1")
      .first<{ at: number }>()
      .then((row) => row?.at ?? 0);
    ulidRunsSince.set(env.DB, since);
    // D1 could not say (an outage): asked again next time; what needed the id fails and is retried.
    since.catch(() => ulidRunsSince.delete(env.DB));
  }
  const at = await since;
  return (functionId, eventId, time) => runIdFor(functionId, eventId, time, at);
}

/** Forgets the time read from `db`, for a test that changes it. */
export function forgetRunIdScheme(db: D1Database): void {
  ulidRunsSince.delete(db);
}
