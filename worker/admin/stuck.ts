import { z } from "zod";
import { engineEventId, type StoredEvent } from "../../sdk/event.ts";
import { markCheckedStatement, recordEndStatement, type RunIndexRow } from "../db/runs.ts";
import { readSetting, type Env } from "../platform/env.ts";
import { ingestEvents } from "../ingest/ingest.ts";
import { createLogger } from "../platform/logger.ts";
import { FINAL_STATUSES } from "../platform/types.ts";
import { runObject } from "../runs/door.ts";
import type { RunFacts } from "../runs/health.ts";
import type { StuckReason } from "../views/health.ts";

// Stuck runs (docs/production.md "Stuck runs"): an unfinished run that nothing will move on its own.
// The tick asks each run of its page of unfinished runs for its facts, writes the verdict into the
// update it makes anyway (checked_at), and sends `stepflare/run.stuck` once per stuck run.

/** The event each stuck run sends once, for a function of the user's own to alert on. */
export const RUN_STUCK_EVENT = "stepflare/run.stuck";

export const DEFAULT_OVERDUE_SECONDS = 60;
export const DEFAULT_RETRYING_SECONDS = 3600;

/** How long past its wake time a run is overdue, and how long one step may retry before the run counts as stuck. */
export interface StuckThresholds {
  overdueMs: number;
  retryingMs: number;
}

const secondsSchema = z.string().trim().regex(/^[0-9]+$/, "must be a whole number of seconds").transform(Number).pipe(z.number().int().positive("must be at least 1"));

/**
 * The thresholds: `STEPFLARE_STUCK_OVERDUE_SECONDS` (default 60) and `STEPFLARE_STUCK_RETRYING_SECONDS`
 * (default 3600); a value that is not a positive whole number gives the default, with a warning in the log.
 *
 * @example
 * stuckThresholds({ STEPFLARE_STUCK_RETRYING_SECONDS: "600" }); // { overdueMs: 60_000, retryingMs: 600_000 }
 */
export function stuckThresholds(env: Pick<Env, "STEPFLARE_STUCK_OVERDUE_SECONDS" | "STEPFLARE_STUCK_RETRYING_SECONDS">): StuckThresholds {
  const seconds = (name: string, raw: string | undefined, fallback: number) => readSetting(name, raw, secondsSchema, fallback, `keeping ${fallback}`);
  return {
    overdueMs: seconds("STEPFLARE_STUCK_OVERDUE_SECONDS", env.STEPFLARE_STUCK_OVERDUE_SECONDS, DEFAULT_OVERDUE_SECONDS) * 1000,
    retryingMs: seconds("STEPFLARE_STUCK_RETRYING_SECONDS", env.STEPFLARE_STUCK_RETRYING_SECONDS, DEFAULT_RETRYING_SECONDS) * 1000,
  };
}

/**
 * Whether a run is stuck and since when, from its object's facts: its function is not registered
 * (a deploy removed or renamed it), its object has no alarm while no invocation runs, its wake time
 * passed more than `overdueMs` ago (a run queued by flow control waits its turn, and is not), or a
 * step has been retrying for more than `retryingMs`. Null when something will move it.
 *
 * @example
 * stuckVerdict({ status: "Running", alarmAt: null, invoking: false }, Date.now(), thresholds); // { reason: "no_alarm", since: now }
 */
export function stuckVerdict(facts: RunFacts, now: number, { overdueMs, retryingMs }: StuckThresholds): { reason: StuckReason; since: number } | null {
  if (FINAL_STATUSES.has(facts.status)) return null;
  if (facts.functionRegistered === false) return { reason: "function_missing", since: now };
  if (!facts.invoking && facts.alarmAt === null) return { reason: "no_alarm", since: now };
  if (!facts.invoking && !facts.flowControlled && facts.wakeAt !== undefined && facts.wakeAt < now - overdueMs) return { reason: "overdue", since: facts.wakeAt };
  if (facts.retryingSince !== undefined && facts.retryingSince < now - retryingMs) return { reason: "retrying", since: facts.retryingSince };
  return null;
}

/** What the tick learned of one unfinished run: the statement recording it, and the event to send if it became stuck. */
export interface RunCheck {
  statement: D1PreparedStatement;
  /** The event of a run that became stuck, and the statement to write instead should it not be sent. */
  stuckEvent?: StoredEvent;
  unsent?: D1PreparedStatement;
}

/**
 * Asks an unfinished run's object for its facts and answers the statement that records them on the
 * shard its row was read from: its
 * end, if it ended and the index missed it; else the check's time with the stuck verdict (a run
 * stuck for the same reason as at the last check keeps its `since`, and sends no event again).
 */
export async function checkUnfinishedRun(env: Env, shard: D1Database, row: RunIndexRow, now: number, thresholds: StuckThresholds): Promise<RunCheck> {
  const facts = await runObject(env, row.id).inspect();
  if (facts && FINAL_STATUSES.has(facts.status)) {
    return { statement: recordEndStatement(shard, row, facts.status, facts.endedAt ?? now) };
  }
  const verdict = facts ? stuckVerdict(facts, now, thresholds) : null;
  if (!verdict) return { statement: markCheckedStatement(shard, row, now) };
  const known = row.stuck_reason === verdict.reason;
  const since = known && row.stuck_since != null ? row.stuck_since : verdict.since;
  // A run that lost its alarm is reported first, then woken by the tick if no one has woken it within the
  // overdue threshold: it has done nothing wrong, and every accepted event must run.
  if (verdict.reason === "no_alarm" && known && since < now - thresholds.overdueMs) {
    await runObject(env, row.id).wake("by the tick");
    return { statement: markCheckedStatement(shard, row, now) };
  }
  const statement = markCheckedStatement(shard, row, now, { reason: verdict.reason, since });
  return known ? { statement } : { statement, stuckEvent: stuckEvent(row, verdict.reason, since, now), unsent: markCheckedStatement(shard, row, now) };
}

/**
 * `stepflare/run.stuck` for a run: its id is the same for every tick that finds the run stuck for
 * this reason, so the event log keeps one (a tick that dies before recording its verdict sends a duplicate).
 */
export function stuckEvent(row: Pick<RunIndexRow, "id" | "function_id">, reason: StuckReason, since: number, now: number): StoredEvent {
  return {
    id: engineEventId(row.id, "stuck", reason),
    name: RUN_STUCK_EVENT,
    data: { run_id: row.id, function_id: row.function_id, reason, stuck_since: new Date(since).toISOString() },
    ts: now,
  };
}

/**
 * Sends the events of runs that became stuck, then writes every check (on the shard the rows were read from). Should the send fail, those
 * runs' verdicts are not written, so the next check finds them stuck anew and sends again.
 *
 * @example
 * await recordChecks(env, shard, await Promise.all(rows.map((row) => checkUnfinishedRun(env, shard, row, now, thresholds))));
 */
export async function recordChecks(env: Env, shard: D1Database, checks: RunCheck[]): Promise<void> {
  if (checks.length === 0) return;
  const events = checks.flatMap((check) => (check.stuckEvent ? [check.stuckEvent] : []));
  let sent = true;
  if (events.length > 0) {
    try {
      await ingestEvents(env, events);
      createLogger().warn("found stuck runs", { count: events.length, runs: events.map((event) => ({ run_id: event.data.run_id, reason: event.data.reason })) });
    } catch (err) {
      sent = false;
      createLogger().error("could not send the events of stuck runs; the next check sends them", { error: String(err) });
    }
  }
  await shard.batch(checks.map((check) => (!sent && check.unsent ? check.unsent : check.statement)));
}
