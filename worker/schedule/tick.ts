import { loadRemoteFunctions } from "../remote/apps.ts";
import { deleteOldEventsStatement, deleteOldMarksStatement, sweepUndispatchedEvents } from "../db/events.ts";
import { checkShardMigrations, shardsOf } from "../db/shards.ts";
import { unfinishedRuns } from "../db/runs.ts";
import { retentionDays, type Env } from "../platform/env.ts";
import { sendMessages } from "../queue/send.ts";
import { createLogger } from "../platform/logger.ts";
import { runDueCrons } from "./crons.ts";
import { resumeStalledCancellations } from "../admin/cancellations.ts";
import { resumeStalledResumes } from "../admin/pauses.ts";
import { checkUnfinishedRun, recordChecks, stuckThresholds } from "../admin/stuck.ts";
import { pruneExpiredWaitsStatement } from "../db/waits.ts";
import { deleteExpiredEventValues } from "../platform/largeValues.ts";
import { checkAccountBudget } from "./accountBudget.ts";
import { pruneEndedRuns } from "./retention.ts";

export const TICK_MS = 60_000;
/** An event stored this long ago and still not dispatched was lost from the queue (DESIGN "Ingest"). */
export const REDISPATCH_AFTER_MS = 30_000;
/** An event re-enqueued once and still not dispatched (a backlog, or lost again) is sent again after this. */
export const RESWEEP_AFTER_MS = 5 * 60_000;
/**
 * How far the sweep's cursor trails the tick: events received since then are read again at each
 * tick, so one whose D1 write landed late (its receipt time is taken before the write) is still found.
 */
const SWEEP_CURSOR_LAG_MS = 2 * 60_000;
const SWEEP_LIMIT = 1000;
/** Unfinished runs whose objects one tick asks for their status. */
const INDEX_REPAIR_LIMIT = 50;
/**
 * Rows per table one tick deletes past retention: a backlog (a first deploy of retention, a
 * shortened period) drains over many ticks, and no tick holds D1, the single writer, for long.
 */
export const PRUNE_LIMIT = 500;
const DAY_MS = 86_400_000;

/** What one tick did: events it re-enqueued, cron runs it started, and when the next cron is due. */
export interface TickResult {
  redispatched: number;
  cronRuns: number;
  nextCronAt: number | null;
}

export interface TickOptions {
  /**
   * Re-enqueue every event not dispatched within 30 s, also those a sweep sent less than
   * `RESWEEP_AFTER_MS` ago: the Scheduler's first tick after it starts asks for it, because under
   * `wrangler dev` the crash that restarted it emptied the queue, and what the last sweep sent with it.
   */
  sweepAgain?: boolean;
}

/**
 * One tick: start the cron runs that are due, re-enqueue events that are in the event log but were
 * never dispatched, repair runs index rows whose end never arrived (under `wrangler dev` a queue's
 * contents vanish when the process dies) and find stuck runs, send again the next page of bulk cancellations whose
 * queue message was lost, and delete rows past retention and timed-out waits. Dispatch and cron runs
 * are idempotent, so ticks may repeat or overlap.
 */
export async function tick(env: Env, now = Date.now(), { sweepAgain = false }: TickOptions = {}): Promise<TickResult> {
  const sweptBefore = sweepAgain ? now : now - RESWEEP_AFTER_MS;
  // A shard without the newest migration: the tick waits (its alarm retries), rather than half run.
  await checkShardMigrations(env);
  // The crons of synced apps' functions too: a tick that cannot read them would drop their schedules.
  await loadRemoteFunctions(env, { required: true });
  const [crons, redispatched] = await Promise.all([
    runDueCrons(env, now),
    redispatchLostEvents(env, now, sweptBefore),
    repairRunsIndex(env, now),
    pruneExpired(env, now),
    resumeStalledCancellations(env, now),
    resumeStalledResumes(env, now),
    checkAccountBudget(env, now),
  ]);
  return { redispatched, cronRuns: crons.started.length, nextCronAt: crons.nextAt };
}

/**
 * Deletes events received, and runs index rows of runs that ended, more than
 * `STEPFLARE_RETENTION_DAYS` before `now`: at most `PRUNE_LIMIT` rows per table and shard, oldest
 * first (runs: each function's oldest first). A run's row goes once its id is on the queue for its
 * object to delete its records (schedule/retention.ts); if the queue refuses it, the row stays for the
 * next tick. Unfinished runs keep their rows and objects. Answers how many rows of each went.
 *
 * @example
 * const { events, runs } = await pruneExpired(env, Date.now());
 */
export async function pruneExpired(env: Env, now: number): Promise<{ events: number; runs: number; waits: number }> {
  const before = now - retentionDays(env) * DAY_MS;
  const perShard = await Promise.all(
    shardsOf(env).map(async (shard) => {
      const [results, runs] = await Promise.all([
        shard.batch([
          deleteOldEventsStatement(shard, before, PRUNE_LIMIT),
          // Waits that timed out: their runs have moved on (a timed-out wait returns null without D1).
          pruneExpiredWaitsStatement(shard, now, PRUNE_LIMIT),
          // The dispatch marks of those seconds: a row names up to a pass's events.
          deleteOldMarksStatement(shard, before, PRUNE_LIMIT),
        ]),
        // Runs' rows go once their objects are told to delete their records (schedule/retention.ts).
        pruneEndedRuns(env, shard, before, PRUNE_LIMIT),
      ]);
      return [results[0]!.meta.changes, runs, results[1]!.meta.changes];
    }),
  );
  const [events, runs, waits] = [0, 1, 2].map((i) => perShard.reduce((sum, changes) => sum + changes[i]!, 0)) as [number, number, number];
  // Events' data in R2 goes a day at a time, once the whole day is past retention (a bucket is bound).
  if (env.VALUES) await deleteExpiredEventValues(env.VALUES, before);
  if (events + runs + waits > 0) createLogger().info("deleted rows past retention", { events, runs, waits });
  return { events, runs, waits };
}

/** Re-enqueues events not dispatched within 30 s, except those a sweep sent since `sweptBefore`; each shard swept from its own cursor. */
async function redispatchLostEvents(env: Env, now: number, sweptBefore: number): Promise<number> {
  // A tick asked about a time to come (a test's) never moves the cursor past the present.
  const cursorTo = Math.min(now, Date.now()) - SWEEP_CURSOR_LAG_MS;
  const sweep = { before: now - REDISPATCH_AFTER_MS, sweptBefore, now, limit: SWEEP_LIMIT, cursorTo };
  const refs = (await Promise.all(shardsOf(env).map((shard) => sweepUndispatchedEvents(shard, sweep)))).flat();
  if (refs.length > 0) {
    await sendMessages(env, refs.map((ref) => ({ type: "event-ref", ...ref })));
    createLogger().info("re-enqueued undispatched events", { count: refs.length });
  }
  return refs.length;
}

/**
 * Asks the objects of the least recently checked unfinished runs how they stand: records ends the
 * index missed, and which runs are stuck (admin/stuck.ts), in the one update per run it writes anyway.
 */
async function repairRunsIndex(env: Env, now: number): Promise<void> {
  const thresholds = stuckThresholds(env);
  await Promise.all(
    shardsOf(env).map(async (shard) => {
      const rows = await unfinishedRuns(shard, now - REDISPATCH_AFTER_MS, INDEX_REPAIR_LIMIT);
      await recordChecks(env, shard, await Promise.all(rows.map((row) => checkUnfinishedRun(env, shard, row, now, thresholds))));
    }),
  );
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
