import type { StepflareFunction } from "../../sdk/function.ts";
import { toEvent } from "../db/events.ts";
import { insertPause, markResumed, pausedEventsPage, pausedFunctions, resumePageDoneStatements, stalledResumes } from "../db/pauses.ts";
import type { RunIndexEntry } from "../db/runs.ts";
import { ShardWrites } from "../db/shards.ts";
import type { Env } from "../platform/env.ts";
import { resolveEventData } from "../platform/largeValues.ts";
import { findFunction } from "../platform/registry.ts";
import { runIdScheme } from "../db/runIdScheme.ts";
import { sendMessages } from "../queue/send.ts";
import { runObject, startEventRun, starterIndexWrites } from "../runs/door.ts";
import { flowObject } from "../flow/admission.ts";

// Pausing a function (beyond Inngest): while paused, the events that trigger it are recorded and
// its runs are not started; on resume they start in order, or are skipped if the pause said so.

/** Recorded events one resume page starts. */
const RESUME_PAGE = 100;

/** Pauses a function; `skip`: the events that come meanwhile are skipped on resume instead of started. */
export async function pauseFunction(env: Env, fn: StepflareFunction, skip: boolean, now = Date.now()): Promise<void> {
  await insertPause(env, fn.id, skip, now);
}

/** Resumes a function: new events start runs at once, and the recorded ones are worked through in pages. */
export async function resumeFunction(env: Env, fn: StepflareFunction, now = Date.now()): Promise<{ skip: boolean } | null> {
  const resumed = await markResumed(env, fn.id, now);
  if (!resumed) return null;
  // A budget counts again from the resume, before the held events start against it.
  if (fn.flow.budget) await flowObject(env, fn.id, "budget", "").resetBudget(now);
  await sendMessages(env, [{ type: "resume-page", functionId: fn.id, skip: resumed.skip }]);
  return resumed;
}

/** Queues again the next page of resumes whose queue message was lost (the tick): resumed over a minute ago, not done. */
export async function resumeStalledResumes(env: Env, now: number): Promise<void> {
  const stalled = await stalledResumes(env, now - 60_000);
  if (stalled.length > 0) await sendMessages(env, stalled.map(({ functionId, skip }) => ({ type: "resume-page", functionId, skip })));
}

/**
 * Starts (or records as Skipped) the oldest recorded events of a resumed function, in the order
 * they came, and queues the next page.
 */
export async function resumePage(env: Env, functionId: string, skip: boolean): Promise<void> {
  const fn = findFunction(functionId);
  if (!fn || (await pausedFunctions(env, true)).has(functionId)) return;
  const { rows: results, gone } = await pausedEventsPage(env, functionId, RESUME_PAGE);
  const entries: RunIndexEntry[] = [];
  const idFor = await runIdScheme(env);
  // An event past retention is gone from the log: its record goes with the page.
  const done: { id: string; received_at: number }[] = [...gone];
  // One after another: runs start in the order their events came.
  for (const row of results) {
    const accepted = { event: toEvent(row), receivedAt: row.received_at };
    if (skip) {
      done.push(row);
      const runId = idFor(fn.id, row.id, row.received_at);
      // A run its dispatch began before the pause (its object died in its first invocation, and the
      // dispatch's repeat met the pause) is not skipped: asked, it arms its watchdog and goes on.
      if (await runObject(env, runId).status()) continue;
      entries.push({ runId, functionId, eventId: row.id, status: "Skipped", startedAt: row.received_at, skipReason: "the function was paused, and resumed skipping its events" });
      continue;
    }
    await resolveEventData(env, [accepted]);
    // Not waiting for each run's first invocation (a page would take as long as its runs): each start arms its watchdog.
    const entry = await startEventRun(env, fn, accepted, row.position, { repeatedUntilAnswered: false });
    // Its budget, spent again, paused the function: this event stays held, and so do those after it.
    if (!entry && fn.flow.budget && (await pausedFunctions(env)).has(functionId)) break;
    if (entry) entries.push(entry);
    done.push(row);
  }
  const more = results.length + gone.length === RESUME_PAGE || done.length < results.length + gone.length;
  // The page's records go only once its skipped runs are indexed.
  await starterIndexWrites(env, entries).writeThen(env, new ShardWrites().add(env.DB, ...resumePageDoneStatements(env, functionId, done, more)));
  if (more) await sendMessages(env, [{ type: "resume-page", functionId, skip }]);
}
