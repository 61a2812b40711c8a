import type { StoredEvent } from "../../sdk/event.ts";
import type { AcceptedEvent } from "../messages.ts";
import { countD1 } from "../usage.ts";

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
 */
export async function insertEvents(db: D1Database, events: StoredEvent[], receivedAt: number): Promise<StoredEvent[]> {
  if (events.length === 0) return [];
  const statement = db.prepare(
    `INSERT INTO events (id, name, data, user, v, ts, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data, user = excluded.user, v = excluded.v,
       ts = excluded.ts, received_at = excluded.received_at, dispatched_at = NULL
     WHERE events.received_at < ?8
     RETURNING id`,
  );
  const results = await db.batch<{ id: string }>(
    events.map((e) =>
      statement.bind(e.id, e.name, JSON.stringify(e.data), e.user ? JSON.stringify(e.user) : null, e.v ?? null, e.ts, receivedAt, receivedAt - DEDUP_WINDOW_MS),
    ),
  );
  countD1(results);
  return events.filter((_, i) => (results[i]?.results.length ?? 0) > 0);
}

export async function getEvent(db: D1Database, id: string): Promise<(AcceptedEvent & { dispatchedAt: number | null }) | null> {
  const { results } = await db.prepare("SELECT * FROM events WHERE id = ?1").bind(id).all<EventRow>().then((r) => (countD1(r), r));
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
  countD1(results);
  return results.flatMap((r) => r.results.map((row) => ({ event: toEvent(row), receivedAt: row.received_at })));
}

/** Statement marking events dispatched: their runs are started. */
export function markDispatched(db: D1Database, ids: string[], at: number): D1PreparedStatement[] {
  return chunk(ids, 99).map((part) =>
    db.prepare(`UPDATE events SET dispatched_at = ?1 WHERE id IN (${part.map((_, i) => `?${i + 2}`).join(",")})`).bind(at, ...part),
  );
}

/** Ids of events accepted before `before` whose runs were never started (lost from the queue). */
export async function undispatchedEventIds(db: D1Database, before: number, limit: number): Promise<string[]> {
  // Uses index events_undispatched.
  const result = await db
    .prepare("SELECT id FROM events WHERE dispatched_at IS NULL AND received_at < ?1 ORDER BY received_at LIMIT ?2")
    .bind(before, limit)
    .all<{ id: string }>();
  countD1(result);
  return result.results.map((r) => r.id);
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
