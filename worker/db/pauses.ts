import { getEventRows, type EventRow } from "./events.ts";
import type { Env } from "../platform/env.ts";
import type { AcceptedEvent } from "../platform/types.ts";

// The pauses of functions in D1 (`function_pauses`, `paused_events`): which functions are paused,
// and the events that came for them meanwhile. admin/pauses.ts pauses and resumes.

/** How long a Worker trusts what it read of the paused functions: a pause takes effect within this everywhere. */
const PAUSES_TTL_MS = 1000;

let cached: { at: number; paused: Set<string> } | undefined;

/** The ids of the paused functions, read from D1 at most once a second per isolate (`fresh`: now). */
export async function pausedFunctions(env: Env, fresh = false): Promise<ReadonlySet<string>> {
  const now = Date.now();
  if (!fresh && cached && now - cached.at < PAUSES_TTL_MS) return cached.paused;
  const { results } = await env.DB.prepare("SELECT function_id FROM function_pauses WHERE resumed_at IS NULL").all<{ function_id: string }>();
  cached = { at: now, paused: new Set(results.map((row) => row.function_id)) };
  return cached.paused;
}

/** Why each paused function is paused (null: an operator paused it), read fresh: the REST API's and dashboard's listing. */
export async function pauseReasons(env: Env): Promise<Map<string, string | null>> {
  const { results } = await env.DB.prepare("SELECT function_id, reason FROM function_pauses WHERE resumed_at IS NULL").all<{ function_id: string; reason: string | null }>();
  return new Map(results.map((row) => [row.function_id, row.reason]));
}

/** Records that `accepted` came for paused functions, to be started on resume. */
export async function recordPausedEvent(env: Env, functionIds: string[], { event, receivedAt }: AcceptedEvent, position: number): Promise<void> {
  const statement = env.DB.prepare("INSERT INTO paused_events (function_id, event_id, received_at, position) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING");
  await env.DB.batch(functionIds.map((id) => statement.bind(id, event.id, receivedAt, position)));
}

/** Records a pause (or changes its `skip`), with why when the engine paused it (a budget); this isolate sees it at once. */
export async function insertPause(env: Env, functionId: string, skip: boolean, now: number, reason: string | null = null): Promise<void> {
  await env.DB.prepare(
    "INSERT INTO function_pauses (function_id, paused_at, skip, reason) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(function_id) DO UPDATE SET skip = excluded.skip, resumed_at = NULL, reason = excluded.reason",
  )
    .bind(functionId, now, skip ? 1 : 0, reason)
    .run();
  cached?.paused.add(functionId);
}

/** Marks a pause resumed; answers its `skip`, or null if the function was not paused. This isolate sees it at once. */
export async function markResumed(env: Env, functionId: string, now: number): Promise<{ skip: boolean } | null> {
  const row = await env.DB.prepare("UPDATE function_pauses SET resumed_at = ?2 WHERE function_id = ?1 AND resumed_at IS NULL RETURNING skip")
    .bind(functionId, now)
    .first<{ skip: number }>();
  cached?.paused.delete(functionId);
  return row ? { skip: row.skip === 1 } : null;
}

/** Resumes still working through their recorded events that made no progress since `before`. */
export async function stalledResumes(env: Env, before: number): Promise<{ functionId: string; skip: boolean }[]> {
  const { results } = await env.DB.prepare("SELECT function_id, skip FROM function_pauses WHERE resumed_at < ?1 LIMIT 100").bind(before).all<{ function_id: string; skip: number }>();
  return results.map((row) => ({ functionId: row.function_id, skip: row.skip === 1 }));
}

/**
 * The oldest `limit` events recorded for a paused function, in the order they came: the page from
 * `paused_events` (on DB), then the events themselves from their shards. `gone`: the recorded events
 * the log no longer holds (past retention), which nothing can start.
 */
export async function pausedEventsPage(env: Env, functionId: string, limit: number): Promise<{ rows: (EventRow & { position: number })[]; gone: { id: string; received_at: number }[] }> {
  const { results } = await env.DB.prepare("SELECT event_id, received_at, position FROM paused_events WHERE function_id = ?1 ORDER BY received_at, position LIMIT ?2")
    .bind(functionId, limit)
    .all<{ event_id: string; received_at: number; position: number }>();
  const rows = new Map((await getEventRows(env, results.map((row) => ({ id: row.event_id, receivedAt: row.received_at })))).map((row) => [`${row.received_at}\n${row.id}`, row]));
  const page: { rows: (EventRow & { position: number })[]; gone: { id: string; received_at: number }[] } = { rows: [], gone: [] };
  for (const held of results) {
    const row = rows.get(`${held.received_at}\n${held.event_id}`);
    if (row) page.rows.push({ ...row, position: held.position });
    else page.gone.push({ id: held.event_id, received_at: held.received_at });
  }
  return page;
}

/**
 * Statements closing a page of a resume: its events are done, and the resume is over (`more` false)
 * or its time moves on, so the tick knows it is alive.
 */
export function resumePageDoneStatements(env: Env, functionId: string, done: { id: string; received_at: number }[], more: boolean): D1PreparedStatement[] {
  const remove = env.DB.prepare("DELETE FROM paused_events WHERE function_id = ?1 AND event_id = ?2 AND received_at = ?3");
  return [
    ...done.map((row) => remove.bind(functionId, row.id, row.received_at)),
    more
      ? env.DB.prepare("UPDATE function_pauses SET resumed_at = ?2 WHERE function_id = ?1 AND resumed_at IS NOT NULL").bind(functionId, Date.now())
      : env.DB.prepare("DELETE FROM function_pauses WHERE function_id = ?1 AND resumed_at IS NOT NULL").bind(functionId),
  ];
}
