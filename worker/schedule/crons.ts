import type { CronSchedule } from "../../sdk/cron.ts";
import { engineEventId, RESERVED_ID_PREFIX, type StoredEvent } from "../../sdk/event.ts";
import { SCHEDULED_TIMER_EVENT, type StepflareFunction } from "../../sdk/function.ts";
import { advanceCronStatement, allCrons, deleteCronStatement, upsertCronStatement } from "../db/crons.ts";
import type { RunIndexEntry } from "../db/runs.ts";
import { FunctionPausedError, startDirectRun, starterIndexWrites } from "../runs/door.ts";
import { ShardWrites } from "../db/shards.ts";
import type { Env } from "../platform/env.ts";
import { allFunctions } from "../platform/registry.ts";
import { runIdFor } from "../platform/runId.ts";
import { runIdScheme, type RunIdScheme } from "../db/runIdScheme.ts";

/** Cron runs started at once by one pass. */
const START_BATCH = 50;

/** What one pass over the crons did: the runs it started, and when the next schedule is due. */
export interface CronPass {
  started: RunIndexEntry[];
  nextAt: number | null;
}

/**
 * Keeps the D1 `crons` table in step with the registered functions (added, changed, removed),
 * starts a run of every schedule that is due, and answers when the next one is. A run's id is
 * derived from (function, cron, scheduled time), so a repeated or overlapping pass starts nothing
 * twice. A schedule missed while nothing ticked (the Worker down for minutes) starts once, for its
 * latest missed time, as on Inngest: a job due every minute should not run thirty times in a burst
 * after a half-hour outage, and a daily report is still sent the day it was missed.
 *
 * @example
 * const { started, nextAt } = await runDueCrons(env, Date.now());
 */
export async function runDueCrons(env: Env, now: number, functions: readonly StepflareFunction[] = allFunctions()): Promise<CronPass> {
  const wanted = new Map<string, { fn: StepflareFunction; schedule: CronSchedule }>();
  for (const fn of functions) for (const schedule of fn.crons) wanted.set(cronKey(fn.id, schedule.source), { fn, schedule });
  const rows = await allCrons(env.DB);
  const stored = new Set(rows.map((row) => cronKey(row.function_id, row.cron)));
  const statements: D1PreparedStatement[] = [];
  const nextTimes: number[] = [];
  const started: RunIndexEntry[] = [];

  const due: { fn: StepflareFunction; schedule: CronSchedule; scheduledAt: number }[] = [];
  for (const row of rows) {
    const entry = wanted.get(cronKey(row.function_id, row.cron));
    if (!entry) {
      statements.push(deleteCronStatement(env.DB, row.function_id, row.cron));
      continue;
    }
    if (row.next_at > now) {
      nextTimes.push(row.next_at);
      continue;
    }
    due.push({ ...entry, scheduledAt: entry.schedule.lastAtOrBefore(now) ?? row.next_at });
    const nextAt = entry.schedule.nextAfter(now);
    if (nextAt === null) statements.push(deleteCronStatement(env.DB, row.function_id, row.cron));
    else {
      statements.push(advanceCronStatement(env.DB, row.function_id, row.cron, row.next_at, nextAt));
      nextTimes.push(nextAt);
    }
  }
  for (const [key, { fn, schedule }] of wanted) {
    if (stored.has(key)) continue;
    const nextAt = schedule.nextAfter(now);
    if (nextAt === null) continue;
    statements.push(upsertCronStatement(env.DB, { function_id: fn.id, cron: schedule.source, timezone: schedule.timezone, next_at: nextAt }));
    nextTimes.push(nextAt);
  }
  // Runs start a batch at a time: a thousand schedules due in the same minute do not open a thousand calls at once.
  for (let i = 0; i < due.length; i += START_BATCH) {
    const batch = due.slice(i, i + START_BATCH);
    started.push(...(await Promise.all(batch.map(({ fn, schedule, scheduledAt }) => startCronRun(env, fn, schedule, scheduledAt, now)))));
  }
  // The crons move on only once their skipped runs are indexed.
  await starterIndexWrites(env, started).writeThen(env, new ShardWrites().add(env.DB, ...statements));
  return { started, nextAt: nextTimes.length > 0 ? Math.min(...nextTimes) : null };
}

/**
 * Starts the runs of the functions whose cron is exactly `cron`, for the schedule's own time at or
 * before `scheduledAt`: a `wrangler.toml` cron trigger that a function also names fires it
 * directly. The time is the schedule's, not the call's (`wrangler dev --test-scheduled` passes the
 * time of the call, and the platform may call again), so every call in a scheduled minute, and the
 * tick that starts the same schedule, start one run (the same run id).
 */
export async function fireCronTrigger(env: Env, cron: string, scheduledAt: number, now: number): Promise<RunIndexEntry[]> {
  const targets = allFunctions().flatMap((fn) =>
    fn.crons.flatMap((schedule) => {
      const at = schedule.source === cron ? schedule.lastAtOrBefore(scheduledAt) : null;
      return at === null ? [] : [{ fn, schedule, at }];
    }),
  );
  const started = await Promise.all(targets.map(({ fn, schedule, at }) => startCronRun(env, fn, schedule, at, now)));
  await indexSkipped(env, started);
  return started;
}

/** Runs a cron function now (`POST /v1/functions/:id/trigger`), with its first cron as the event's. */
export async function triggerCronNow(env: Env, fn: StepflareFunction, now: number): Promise<RunIndexEntry> {
  const run = await startCronRun(env, fn, fn.crons[0]!, now, now, true);
  await indexSkipped(env, [run]);
  return run;
}

/**
 * Starts the run of one schedule; its event is Inngest's `inngest/scheduled.timer` with `data.cron`.
 * A paused function's is Skipped; one asked for by hand (`manual`) throws FunctionPausedError.
 */
async function startCronRun(env: Env, fn: StepflareFunction, schedule: CronSchedule, scheduledAt: number, now: number, manual = false): Promise<RunIndexEntry> {
  const runId = cronRunId(fn.id, schedule.source, scheduledAt, await runIdScheme(env));
  const event: StoredEvent = { id: engineEventId("cron", runId), name: SCHEDULED_TIMER_EVENT, data: { cron: schedule.source }, ts: scheduledAt };
  try {
    // Listed at its scheduled time, which its id carries: both ways a schedule fires (the cron trigger and the
    // Scheduler's tick, whichever comes first) name the same row of the runs index, and no index entry by id.
    return await startDirectRun(env, { runId, functionId: fn.id, events: [event], startAt: now, startedAt: scheduledAt });
  } catch (err) {
    // A paused function's scheduled time passes without a run: recorded as Skipped, not made up later.
    if (!(err instanceof FunctionPausedError) || manual) throw err;
    return { runId, functionId: fn.id, eventId: event.id, status: "Skipped", startedAt: scheduledAt, skipReason: "the function is paused" };
  }
}

/**
 * The id of the run of `functionId`'s cron `source` scheduled at `scheduledAt`. Derived as an event's
 * run is, from an event id in the engine's space: an event a sender sent could not have it, so no
 * event's run can take a schedule's id first.
 *
 * @example
 * cronRunId("weekly-report", "TZ=Europe/Paris 0 9 * * 1", Date.parse("2026-03-30T07:00:00Z"));
 */
export function cronRunId(functionId: string, source: string, scheduledAt: number, idFor: RunIdScheme = runIdFor): string {
  return idFor(functionId, `${RESERVED_ID_PREFIX}cron ${source}`, scheduledAt);
}

function cronKey(functionId: string, cron: string): string {
  return `${functionId}\n${cron}`;
}

/** Writes the rows of the runs a paused function's schedule skipped (a started run's object writes its own). */
async function indexSkipped(env: Env, entries: RunIndexEntry[]): Promise<void> {
  await starterIndexWrites(env, entries).write(env);
}
