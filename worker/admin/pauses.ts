import type { StepflareFunction } from "../../sdk/function.ts";
import { toEvent, type EventRow } from "../db/events.ts";
import type { RunIndexEntry } from "../db/runs.ts";
import { insertRunStatement } from "../db/runs.ts";
import type { Env } from "../platform/env.ts";
import { sendMessages } from "../ingest/ingest.ts";
import type { AcceptedEvent } from "../queue/messages.ts";
import { findFunction } from "../platform/registry.ts";
import { runIdFor } from "../platform/runId.ts";

// Pausing a function (beyond Inngest): while paused, the events that trigger it are recorded and
// its runs are not started; on resume they start in order, or are skipped if the pause said so.

/** How long a Worker trusts what it read of the paused functions: a pause takes effect within this everywhere. */
const PAUSES_TTL_MS = 1000;
/** Recorded events one resume page starts. */
const RESUME_PAGE = 100;

let cached: { at: number; paused: Set<string> } | undefined;

/** The ids of the paused functions, read from D1 at most once a second per isolate (`fresh`: now). */
export async function pausedFunctions(env: Env, fresh = false): Promise<ReadonlySet<string>> {
  const now = Date.now();
  if (!fresh && cached && now - cached.at < PAUSES_TTL_MS) return cached.paused;
  const { results } = await env.DB.prepare("SELECT function_id FROM function_pauses WHERE resumed_at IS NULL").all<{ function_id: string }>();
  cached = { at: now, paused: new Set(results.map((row) => row.function_id)) };
  return cached.paused;
}

/** Records that `accepted` came for paused functions, to be started on resume. */
export async function recordPausedEvent(env: Env, functionIds: string[], { event, receivedAt }: AcceptedEvent, position: number): Promise<void> {
  const statement = env.DB.prepare("INSERT INTO paused_events (function_id, event_id, received_at, position) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING");
  await env.DB.batch(functionIds.map((id) => statement.bind(id, event.id, receivedAt, position)));
}

/** Pauses a function; `skip`: the events that come meanwhile are skipped on resume instead of started. */
export async function pauseFunction(env: Env, fn: StepflareFunction, skip: boolean, now = Date.now()): Promise<void> {
  await env.DB.prepare(
    "INSERT INTO function_pauses (function_id, paused_at, skip) VALUES (?1, ?2, ?3) ON CONFLICT(function_id) DO UPDATE SET skip = excluded.skip, resumed_at = NULL",
  )
    .bind(fn.id, now, skip ? 1 : 0)
    .run();
  cached?.paused.add(fn.id);
}

/** Resumes a function: new events start runs at once, and the recorded ones are worked through in pages. */
export async function resumeFunction(env: Env, fn: StepflareFunction, now = Date.now()): Promise<{ skip: boolean } | null> {
  const row = await env.DB.prepare("UPDATE function_pauses SET resumed_at = ?2 WHERE function_id = ?1 AND resumed_at IS NULL RETURNING skip")
    .bind(fn.id, now)
    .first<{ skip: number }>();
  cached?.paused.delete(fn.id);
  if (!row) return null;
  await sendMessages(env, [{ type: "resume-page", functionId: fn.id, skip: row.skip === 1 }]);
  return { skip: row.skip === 1 };
}

/** Queues again the next page of resumes whose queue message was lost (the tick): resumed over a minute ago, not done. */
export async function resumeStalledResumes(env: Env, now: number): Promise<void> {
  const { results } = await env.DB.prepare("SELECT function_id, skip FROM function_pauses WHERE resumed_at < ?1 LIMIT 100").bind(now - 60_000).all<{ function_id: string; skip: number }>();
  if (results.length > 0) await sendMessages(env, results.map((row) => ({ type: "resume-page", functionId: row.function_id, skip: row.skip === 1 })));
}

/**
 * Starts (or records as Skipped) the oldest recorded events of a resumed function, in the order
 * they came, and queues the next page. `start` is the dispatch of one event to one function.
 */
export async function resumePage(
  env: Env,
  functionId: string,
  skip: boolean,
  start: (fn: StepflareFunction, accepted: AcceptedEvent, position: number) => Promise<RunIndexEntry | null>,
): Promise<void> {
  const fn = findFunction(functionId);
  if (!fn || (await pausedFunctions(env, true)).has(functionId)) return;
  const { results } = await env.DB.prepare(
    `SELECT paused_events.position, events.* FROM paused_events JOIN events ON events.id = paused_events.event_id AND events.received_at = paused_events.received_at
     WHERE paused_events.function_id = ?1 ORDER BY paused_events.received_at, paused_events.position LIMIT ?2`,
  )
    .bind(functionId, RESUME_PAGE)
    .all<EventRow & { position: number }>();
  const entries: RunIndexEntry[] = [];
  // One after another: runs start in the order their events came.
  for (const row of results) {
    const accepted = { event: toEvent(row), receivedAt: row.received_at };
    if (skip) {
      entries.push({ runId: runIdFor(fn.id, row.id, row.received_at), functionId, eventId: row.id, status: "Skipped", startedAt: row.received_at, skipReason: "the function was paused, and resumed skipping its events" });
      continue;
    }
    const entry = await start(fn, accepted, row.position);
    if (entry) entries.push(entry);
  }
  const done = env.DB.prepare("DELETE FROM paused_events WHERE function_id = ?1 AND event_id = ?2 AND received_at = ?3");
  const more = results.length === RESUME_PAGE;
  await env.DB.batch([
    ...entries.map((entry) => insertRunStatement(env.DB, entry)),
    ...results.map((row) => done.bind(functionId, row.id, row.received_at)),
    // The last page: the resume is over. Otherwise its time moves on, so the tick knows it is alive.
    more
      ? env.DB.prepare("UPDATE function_pauses SET resumed_at = ?2 WHERE function_id = ?1 AND resumed_at IS NOT NULL").bind(functionId, Date.now())
      : env.DB.prepare("DELETE FROM function_pauses WHERE function_id = ?1 AND resumed_at IS NOT NULL").bind(functionId),
  ]);
  if (more) await sendMessages(env, [{ type: "resume-page", functionId, skip }]);
}
