import type { StoredEvent } from "../../sdk/event.ts";
import type { AcceptedEvent } from "../messages.ts";

/** An event id is new again once the one before it is older than this (Inngest's dedup window). */
export const DEDUP_WINDOW_MS = 24 * 60 * 60 * 1000;

interface EventRow {
  id: string;
  name: string;
  data: string;
  user: string | null;
  v: string | null;
  ts: number;
  received_at: number;
  dispatched_at: number | null;
}

/**
 * Writes events to the log in one batch and answers those that are new: an id seen in the last
 * 24 h is a duplicate and comes back out; an older one is replaced and dispatched again.
 * Events travel as one JSON parameter per statement (read with json_each), so a request of 5,000
 * events is a handful of statements, within D1's limits on statements and bound parameters.
 */
export async function insertEvents(db: D1Database, events: StoredEvent[], receivedAt: number): Promise<StoredEvent[]> {
  if (events.length === 0) return [];
  // data and user go in as JSON text, so they are stored exactly as JSON.stringify wrote them.
  const rows = events.map((e) => JSON.stringify([e.id, e.name, JSON.stringify(e.data), e.user ? JSON.stringify(e.user) : null, e.v ?? null, e.ts]));
  const statement = db.prepare(
    `INSERT INTO events (id, name, data, user, v, ts, received_at)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, ?2 FROM json_each(?1) WHERE true
     ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data, user = excluded.user, v = excluded.v,
       ts = excluded.ts, received_at = excluded.received_at, dispatched_at = NULL
     WHERE events.received_at < ?3
     RETURNING id`,
  );
  const results = await db.batch<{ id: string }>(
    chunkByBytes(rows, MAX_PARAMETER_BYTES).map((part) => statement.bind(`[${part.join(",")}]`, receivedAt, receivedAt - DEDUP_WINDOW_MS)),
  );
  const fresh = new Set(results.flatMap((r) => r.results.map((row) => row.id)));
  // The first of several events sharing an id in one request is the one that was stored.
  return events.filter((e) => fresh.delete(e.id));
}

/** D1 holds at most 2 MB in one value; a bound JSON parameter stays under it. */
const MAX_PARAMETER_BYTES = 1_500_000;

function chunkByBytes(items: string[], maxBytes: number): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = new TextEncoder().encode(item).length + 1;
    if (current.length > 0 && bytes + size > maxBytes) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export async function getEvent(db: D1Database, id: string): Promise<(AcceptedEvent & { dispatchedAt: number | null }) | null> {
  const { results } = await db.prepare("SELECT * FROM events WHERE id = ?1").bind(id).all<EventRow>();
  const row = results[0];
  return row ? { event: toEvent(row), receivedAt: row.received_at, dispatchedAt: row.dispatched_at } : null;
}

export async function getEvents(db: D1Database, ids: string[]): Promise<AcceptedEvent[]> {
  if (ids.length === 0) return [];
  // D1 binds at most 100 parameters per statement.
  const chunks = chunk(ids, 100);
  const results = await db.batch<EventRow>(
    chunks.map((part) => db.prepare(`SELECT * FROM events WHERE id IN (${part.map((_, i) => `?${i + 1}`).join(",")})`).bind(...part)),
  );
  return results.flatMap((r) => r.results.map((row) => ({ event: toEvent(row), receivedAt: row.received_at })));
}

/** Statement marking events dispatched: their runs are started. */
export function markDispatched(db: D1Database, ids: string[], at: number): D1PreparedStatement[] {
  return chunk(ids, 99).map((part) =>
    db.prepare(`UPDATE events SET dispatched_at = ?1 WHERE id IN (${part.map((_, i) => `?${i + 2}`).join(",")})`).bind(at, ...part),
  );
}

/**
 * Ids of events accepted before `before` whose runs were never started (lost from the queue), and
 * not swept since `sweptBefore`; marks them swept at `now`.
 */
export async function sweepUndispatchedEvents(db: D1Database, before: number, sweptBefore: number, now: number, limit: number): Promise<string[]> {
  // Uses index events_undispatched.
  const result = await db
    .prepare(
      `SELECT id FROM events WHERE dispatched_at IS NULL AND received_at < ?1 AND (swept_at IS NULL OR swept_at < ?2)
       ORDER BY received_at LIMIT ?3`,
    )
    .bind(before, sweptBefore, limit)
    .all<{ id: string }>();
  const ids = result.results.map((r) => r.id);
  const marks = chunk(ids, 99).map((part) =>
    db.prepare(`UPDATE events SET swept_at = ?1 WHERE id IN (${part.map((_, i) => `?${i + 2}`).join(",")})`).bind(now, ...part),
  );
  if (marks.length > 0) await db.batch(marks);
  return ids;
}

function toEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    name: row.name,
    data: JSON.parse(row.data) as Record<string, unknown>,
    ts: row.ts,
    ...(row.user ? { user: JSON.parse(row.user) as Record<string, unknown> } : {}),
    ...(row.v ? { v: row.v } : {}),
  };
}

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
