import { decodeTime, ulid } from "ulidx";
import type { StoredEvent } from "../../sdk/event.ts";
import { pageOf, type PageCursor } from "./runs.ts";
import type { AcceptedEvent, EventRef } from "../platform/types.ts";
import { eventDataPlaceholder, R2_MARKER } from "../platform/largeValues.ts";
import type { Env } from "../platform/env.ts";
import { fromEveryShard, groupByHoldingShard, mergeNewestFirst, recordLayout, shardFor, ShardWrites } from "./shards.ts";

/** An event id is new again once the one before it is older than this (Inngest's dedup window). */
export const DEDUP_WINDOW_MS = 24 * 60 * 60 * 1000;

/** A row of the D1 event log. */
export interface EventRow {
  id: string;
  name: string;
  data: string;
  user: string | null;
  v: string | null;
  ts: number;
  received_at: number;
  dispatched_at: number | null;
  /** The runaway guard's chain depth (NULL: 0, an event from outside). */
  depth?: number | null;
  /** 1 when the id is a ULID of `received_at`, so the primary key orders the row by receipt (migration 0017). */
  id_ordered?: 1 | null;
}

/** A ULID as the engine makes them: 10 characters of time, then 16 random, in Crockford's base 32. */
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/**
 * 1 when the primary key (id, received_at) already orders this event by receipt: its id is a ULID
 * of the millisecond it was received, as the engine's own ids for events sent without one are.
 * Such a row enters no index by receipt; every other (null) enters index events_received.
 */
export function idOrdered(id: string, receivedAt: number): 1 | null {
  return ULID.test(id) && decodeTime(id) === receivedAt ? 1 : null;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * SQL for the time prefix of the ULIDs of millisecond `ms` (an SQL integer expression): ULIDs of that
 * millisecond sort from it, those of earlier ones below it. Computed in SQL so that a bound read in
 * the same statement (the sweep's cursor) can be one.
 */
export function ulidTimeSql(ms: string): string {
  return Array.from({ length: 10 }, (_, i) => `substr('${CROCKFORD}', (((${ms}) >> ${45 - 5 * i}) & 31) + 1, 1)`).join(" || ");
}

/** SQL for the earliest receipt a row ordered by its id may have (migration 0017's time, less a day). */
const ORDERED_SINCE = "(SELECT ordered_since FROM sweep_cursor)";

/** How far past now a read of the newest rows by their ids' prefix reaches (clocks differ a little). */
export const ORDERED_AHEAD_MS = 86_400_000;

/**
 * SQL for the primary key's range that holds the rows ordered by their ids received in [`from`, `to`)
 * (SQL expressions), from the time prefix of the later of `from` and ORDERED_SINCE: ids of other kinds
 * that sort outside it (a sender's zero-padded or numeric ids, UUIDs) are never read.
 */
function orderedIdRange(from: string, to: string): string {
  return `id >= ${ulidTimeSql(`MAX(${from}, ${ORDERED_SINCE})`)} AND id < ${ulidTimeSql(`MAX(${to}, 0)`)} AND id_ordered = 1`;
}

/**
 * SQL for the receipt of the oldest event received before `to` (an SQL expression), NULL when there
 * is none: one seek in index events_received, one in the primary key.
 */
export function oldestReceiptSql(to: string): string {
  const indexed = `(SELECT MIN(received_at) FROM events WHERE id_ordered IS NULL AND received_at < ${to})`;
  const ordered = `(SELECT received_at FROM events WHERE ${orderedIdRange("0", to)} ORDER BY id LIMIT 1)`;
  return `MIN(COALESCE(${indexed}, ${ordered}), COALESCE(${ordered}, ${indexed}))`;
}

/**
 * Writes events to the log, each on its id's shard (one batch per shard), and answers those that
 * are new. An event is new unless an event with its id was received in the 24 h before
 * `receivedAt`; an older one stays in the log and the new one is stored beside it (Inngest's dedup
 * window). Of several events sharing an id in one request, the first is the one stored. Within a
 * day of a shard's addition, an id is also looked for where the layout before put it.
 * `storedData` holds what the `data` column stores for events whose data is in R2.
 * Events travel as one JSON parameter per statement (read with json_each), so a request of 5,000
 * events is a handful of statements, within D1's limits on statements and bound parameters.
 *
 * @example
 * const fresh = await insertEvents(env, events, Date.now());
 */
export async function insertEvents(env: Env, events: StoredEvent[], receivedAt: number, storedData?: Map<StoredEvent, string>): Promise<StoredEvent[]> {
  // Deduplicated here: a statement's NOT EXISTS does not see the rows that statement inserts.
  const firsts = await notLoggedElsewhere(env, firstOfEachId(events), receivedAt - DEDUP_WINDOW_MS);
  if (firsts.length === 0) return [];
  const byShard = new Map<D1Database, StoredEvent[]>();
  for (const event of firsts) {
    const shard = shardFor(env, event.id);
    byShard.set(shard, [...(byShard.get(shard) ?? []), event]);
  }
  await recordLayout(env);
  const fresh = new Set((await Promise.all([...byShard].map(([shard, part]) => insertOnShard(shard, part, receivedAt, storedData)))).flat());
  return firsts.filter((e) => fresh.has(e.id));
}

async function insertOnShard(db: D1Database, events: StoredEvent[], receivedAt: number, storedData?: Map<StoredEvent, string>): Promise<string[]> {
  // data and user go in as JSON text, so they are stored exactly as JSON.stringify wrote them; a
  // large event's data as its reference to R2 (`storedData`, platform/largeValues.ts).
  const rows = events.map((e) =>
    JSON.stringify([e.id, e.name, storedData?.get(e) ?? JSON.stringify(e.data), e.user ? JSON.stringify(e.user) : null, e.v ?? null, e.ts, e.depth || null, idOrdered(e.id, receivedAt)]),
  );
  // The dedup check uses the primary key (id, received_at).
  const statement = db.prepare(
    `INSERT INTO events (id, name, data, user, v, ts, received_at, depth, id_ordered)
     SELECT sent.value ->> 0, sent.value ->> 1, sent.value ->> 2, sent.value ->> 3, sent.value ->> 4, sent.value ->> 5, ?2, sent.value ->> 6, sent.value ->> 7
     FROM json_each(?1) AS sent
     WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.id = sent.value ->> 0 AND events.received_at >= ?3)
     RETURNING id`,
  );
  const results = await db.batch<{ id: string }>(
    chunkByBytes(rows, MAX_PARAMETER_BYTES).map((part) => statement.bind(`[${part.join(",")}]`, receivedAt, receivedAt - DEDUP_WINDOW_MS)),
  );
  return results.flatMap((r) => r.results.map((row) => row.id));
}

/**
 * The events whose id no shard but their own received since `since`: an id sent again soon after a
 * shard was added may be logged where the layout before put it. Reads nothing while every id's
 * shard is the same under each layout of the window (always, with DB alone).
 */
async function notLoggedElsewhere(env: Env, events: StoredEvent[], since: number): Promise<StoredEvent[]> {
  const holding = await groupByHoldingShard(env, events, (e) => e.id, () => since);
  const elsewhere = [...holding].flatMap(([shard, part]) => {
    const ids = part.filter((e) => shardFor(env, e.id) !== shard).map((e) => e.id);
    return ids.length > 0 ? [{ shard, ids }] : [];
  });
  if (elsewhere.length === 0) return events;
  const logged = await Promise.all(
    elsewhere.map(async ({ shard, ids }) => {
      // Uses the primary key (id, received_at).
      const { results } = await shard.prepare("SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND received_at >= ?2").bind(JSON.stringify(ids), since).all<{ id: string }>();
      return results.map((row) => row.id);
    }),
  );
  const seen = new Set(logged.flat());
  return events.filter((e) => !seen.has(e.id));
}

/**
 * The events among `ids` received since `since` that are stored but not dispatched: a sender that
 * saw its request fail after the write (the queue down, say) sends them again as duplicates, and
 * they must still reach the queue. Dispatch is idempotent, so a second message changes nothing.
 *
 * @example
 * const stuck = await undispatchedEvents(env, ["01J..."], Date.now() - DEDUP_WINDOW_MS);
 */
export async function undispatchedEvents(env: Env, ids: string[], since: number): Promise<AcceptedEvent[]> {
  if (ids.length === 0) return [];
  const pages = await Promise.all(
    [...(await groupByHoldingShard(env, ids, (id) => id, () => since))].map(async ([shard, part]) => {
      // Uses the primary key (id, received_at).
      const result = await shard
        .prepare(`SELECT * FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND received_at >= ?2 AND ${dispatchedAtSql()} IS NULL`)
        .bind(JSON.stringify(part), since)
        .all<EventRow>();
      return result.results;
    }),
  );
  return pages.flat().map((row) => ({ event: toEvent(row), receivedAt: row.received_at }));
}

function firstOfEachId(events: StoredEvent[]): StoredEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => !seen.has(e.id) && seen.add(e.id));
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

/** Event refs as JSON array parameters of `[id, receivedAt]` pairs, each within D1's value limit. */
function refParameters(refs: EventRef[]): string[] {
  return chunkByBytes(refs.map((ref) => JSON.stringify([ref.id, ref.receivedAt])), MAX_PARAMETER_BYTES).map((part) => `[${part.join(",")}]`);
}

/**
 * The newest event with this id (an id sent again after the dedup window names several events),
 * with when it was dispatched and when each event with the id was received; null if the log has none.
 *
 * @example
 * const found = await getEvent(env, "01J...");
 */
export async function getEvent(env: Env, id: string): Promise<(AcceptedEvent & { dispatchedAt: number | null; receipts: number[] }) | null> {
  const pages = await Promise.all(
    [...(await groupByHoldingShard(env, [id], (key) => key)).keys()].map(async (shard) => {
      // Uses the primary key (id, received_at).
      const result = await shard.prepare(`SELECT *, ${dispatchedAtSql()} AS dispatched_at_or_marked FROM events WHERE id = ?1`).bind(id).all<EventRow & { dispatched_at_or_marked: number | null }>();
      return result.results;
    }),
  );
  const rows = pages.flat().sort((a, b) => b.received_at - a.received_at);
  const row = rows[0];
  return row ? { event: toEvent(row), receivedAt: row.received_at, dispatchedAt: row.dispatched_at_or_marked, receipts: rows.map((r) => r.received_at) } : null;
}

/**
 * The events these refs name, in no particular order; a ref the log does not hold is left out.
 *
 * @example
 * const accepted = await getEvents(env, [{ id: "01J...", receivedAt: 1764000000000 }]);
 */
export async function getEvents(env: Env, refs: EventRef[]): Promise<AcceptedEvent[]> {
  return (await getEventRows(env, refs)).map((row) => ({ event: toEvent(row), receivedAt: row.received_at }));
}

/** The rows of the log these refs name, from the shards that may hold them, in no particular order. */
export async function getEventRows(env: Env, refs: EventRef[]): Promise<EventRow[]> {
  if (refs.length === 0) return [];
  const pages = await Promise.all(
    [...(await groupByHoldingShard(env, refs, (ref) => ref.id, (ref) => ref.receivedAt))].map(async ([shard, part]) => {
      // Uses the primary key (id, received_at).
      const statement = shard.prepare(`SELECT events.* FROM json_each(?1) AS ref JOIN events ON events.id = ref.value ->> 0 AND events.received_at = ref.value ->> 1`);
      const results = await shard.batch<EventRow>(refParameters(part).map((param) => statement.bind(param)));
      return results.flatMap((r) => r.results);
    }),
  );
  return pages.flat();
}

/**
 * The writes marking events dispatched (their runs are started), on the shards that may hold them.
 * A pass over several events received in fewer seconds than they are many writes one row of
 * dispatch_marks per second (a queue batch's 100 events of one request: one row, not 100 updates),
 * and sets the mark on the rows of those the sweep already took, so they leave index events_resweep;
 * other passes set each event's `dispatched_at`.
 *
 * @example
 * await (await markDispatched(env, [{ id: "01J...", receivedAt: 1764000000000 }], Date.now())).write(env);
 */
export async function markDispatched(env: Env, refs: EventRef[], at: number): Promise<ShardWrites> {
  const writes = new ShardWrites();
  for (const [shard, part] of await groupByHoldingShard(env, refs, (ref) => ref.id, (ref) => ref.receivedAt)) {
    const bySecond = new Map<number, EventRef[]>();
    for (const ref of part) {
      const second = Math.floor(ref.receivedAt / 1000);
      bySecond.set(second, [...(bySecond.get(second) ?? []), ref]);
    }
    // Uses the primary key (id, received_at).
    const update = `UPDATE events SET dispatched_at = ?1 WHERE (id, received_at) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?2))`;
    if (bySecond.size >= part.length) {
      writes.add(shard, ...refParameters(part).map((param) => shard.prepare(update).bind(at, param)));
      continue;
    }
    const pass = ulid();
    const insert = shard.prepare("INSERT INTO dispatch_marks (second, pass, refs, at) VALUES (?1, ?2, ?3, ?4)");
    for (const [second, ofSecond] of bySecond) writes.add(shard, ...refParameters(ofSecond).map((param, i) => insert.bind(second, `${pass}-${i}`, param, at)));
    // Writes only rows the sweep took (rare): the others are read and left.
    writes.add(shard, ...refParameters(part).map((param) => shard.prepare(`${update} AND swept_at IS NOT NULL`).bind(at, param)));
  }
  return writes;
}

/**
 * SQL for when a row of `events` (named `table` in the statement) was dispatched, NULL while it is
 * not: its own `dispatched_at`, or the time of the row of dispatch_marks that names it (markDispatched).
 */
export function dispatchedAtSql(table = "events"): string {
  return `COALESCE(${table}.dispatched_at, (SELECT m.at FROM dispatch_marks AS m, json_each(m.refs) AS r
     WHERE m.second = ${table}.received_at / 1000 AND r.value ->> 0 = ${table}.id AND r.value ->> 1 = ${table}.received_at))`;
}

/**
 * A WITH clause naming `marked`: the events dispatch_marks names, received from the second of
 * `from` to that of `to` (SQL expressions), for a statement reading the events of that window.
 */
function markedBetween(from: string, to: string): string {
  return `marked (id, received_at) AS MATERIALIZED (
      SELECT r.value ->> 0, r.value ->> 1 FROM dispatch_marks AS m, json_each(m.refs) AS r WHERE m.second >= (${from}) / 1000 AND m.second <= (${to}) / 1000)`;
}

/**
 * SQL selecting `columns` of the log's rows received in [`from`, `to`) (SQL expressions) that meet
 * `where`, the first `limit` by receipt (`DESC`: the last). Rows ordered by their ids are read
 * through the primary key from their ids' time prefix, the others through index events_received;
 * the two parts merge by (receipt, id). A statement changing the rows it picks names them in a
 * WITH clause: SQLite seeks the primary key for each then, where `IN (compound select)` scans.
 */
function receivedBetween(columns: string, from: string, to: string, where: string, limit: string, order: "" | " DESC" = ""): string {
  const received = `received_at >= ${from} AND received_at < ${to}`;
  return `SELECT ${columns} FROM (
      SELECT ${columns} FROM events WHERE ${orderedIdRange(from, to)} AND ${received} AND ${where}
      ORDER BY id${order} LIMIT ${limit})
    UNION ALL
    SELECT ${columns} FROM (
      SELECT ${columns} FROM events WHERE id_ordered IS NULL AND ${received} AND ${where}
      ORDER BY received_at${order}, id${order} LIMIT ${limit})
    ORDER BY received_at${order}, id${order} LIMIT ${limit}`;
}

/**
 * Events accepted before `before` whose runs were never started (lost from the queue), and not
 * swept since `sweptBefore`, oldest first; marks them swept at `now` in the same batch. New ones are
 * read from the sweep cursor on (by their ids' time or index events_received: no index entry per
 * event until it is dispatched), and the cursor moves up to the oldest still unswept, at most to
 * `cursorTo`; those swept before and still undispatched, a rare few, come from index events_resweep.
 *
 * @example
 * const lost = await sweepUndispatchedEvents(env.DB, { before: now - 30_000, sweptBefore: now - 300_000, now, limit: 1000, cursorTo: now - 120_000 });
 */
export async function sweepUndispatchedEvents(db: D1Database, sweep: { before: number; sweptBefore: number; now: number; limit: number; cursorTo: number }): Promise<EventRef[]> {
  const { before, sweptBefore, now, limit, cursorTo } = sweep;
  const unswept = "dispatched_at IS NULL AND swept_at IS NULL AND (id, received_at) NOT IN (SELECT id, received_at FROM marked)";
  const marked = markedBetween("SELECT swept_to FROM sweep_cursor", "?1");
  const [fresh, , again] = await db.batch<{ id: string; received_at: number }>([
    db
      .prepare(
        `WITH ${marked}, picked AS (${receivedBetween("id, received_at", "(SELECT swept_to FROM sweep_cursor)", "?1", unswept, "?3")})
         UPDATE events SET swept_at = ?2 WHERE (id, received_at) IN (SELECT id, received_at FROM picked)
         RETURNING id, received_at`,
      )
      .bind(before, now, limit),
    // Past the limit, the cursor stays at the oldest left for the next tick; never past `cursorTo`, which
    // trails the sweep so that an event whose write took long to land is still read.
    db
      .prepare(`WITH ${marked} UPDATE sweep_cursor SET swept_to = MAX(swept_to, MIN(?2, COALESCE((SELECT received_at FROM (${receivedBetween("received_at, id", "(SELECT swept_to FROM sweep_cursor)", "?1", unswept, "1")})), ?2)))`)
      .bind(before, cursorTo),
    db
      .prepare(
        `UPDATE events SET swept_at = ?2 WHERE (id, received_at) IN (
           SELECT id, received_at FROM events WHERE dispatched_at IS NULL AND swept_at IS NOT NULL AND swept_at < ?1
           ORDER BY swept_at LIMIT ?3)
         RETURNING id, received_at`,
      )
      .bind(sweptBefore, now, limit),
  ]);
  // RETURNING answers in the order the update met the rows (the primary key's), not the pick's.
  const oldestFirst = (rows: { id: string; received_at: number }[]) => rows.sort((a, b) => a.received_at - b.received_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return [...oldestFirst(fresh!.results), ...oldestFirst(again!.results)].map((row) => ({ id: row.id, receivedAt: row.received_at }));
}

/**
 * Statement deleting up to `limit` events received before `before`, oldest first (retention).
 * Bounded so one tick's delete stays a short write, whatever the backlog.
 *
 * @example
 * await env.DB.batch([deleteOldEventsStatement(env.DB, Date.now() - 30 * 86_400_000, 500)]);
 */
export function deleteOldEventsStatement(db: D1Database, before: number, limit: number): D1PreparedStatement {
  return db
    .prepare(`WITH picked AS (${receivedBetween("id, received_at", "0", "?1", "1", "?2")}) DELETE FROM events WHERE (id, received_at) IN (SELECT id, received_at FROM picked)`)
    .bind(before, limit);
}

/**
 * Statement deleting up to `limit` rows of dispatch_marks naming events received before `before`
 * (retention, beside deleteOldEventsStatement's).
 */
export function deleteOldMarksStatement(db: D1Database, before: number, limit: number): D1PreparedStatement {
  // Never past the oldest event left: a backlog of deletes keeps the marks of the events it has not reached.
  return db
    .prepare(
      `DELETE FROM dispatch_marks WHERE (second, pass) IN (
         SELECT second, pass FROM dispatch_marks WHERE second < CAST(COALESCE(${oldestReceiptSql("CAST(?1 AS INTEGER)")}, ?1) AS INTEGER) / 1000 ORDER BY second LIMIT ?2)`,
    )
    .bind(before, limit);
}

/** The event a row of the log holds. */
export function toEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    name: row.name,
    // Data in R2 reads as a placeholder until resolveEventData() fetches it.
    data: row.data.startsWith(R2_MARKER) ? eventDataPlaceholder(row.data) : (JSON.parse(row.data) as Record<string, unknown>),
    ts: row.ts,
    ...(row.user ? { user: JSON.parse(row.user) as Record<string, unknown> } : {}),
    ...(row.v ? { v: row.v } : {}),
    ...(row.depth ? { depth: row.depth } : {}),
  };
}

/**
 * A page of the event log, newest first, after `cursor` (the previous page's `next`); with `name`,
 * only events of that name. Each shard seeks its index (events_received or events_name) to the
 * cursor and answers its first page; the pages merge by (receipt, id), which no two events share.
 *
 * @example
 * const page = await listEvents(env, { name: "shop/order.placed" }, null, 50);
 */
export async function listEvents(env: Env, filter: { name?: string }, cursor: PageCursor | null, limit: number): Promise<{ rows: EventRow[]; next: PageCursor | null }> {
  const params: (string | number)[] = [];
  const bind = (value: string | number) => `?${params.push(value)}`;
  const after = cursor ? `(received_at, id) < (${bind(cursor.at)}, ${bind(cursor.id)})` : "1";
  const sql =
    filter.name === undefined
      ? receivedBetween("*", "0", cursor ? `${bind(cursor.at)} + 1` : bind(Date.now() + ORDERED_AHEAD_MS), after, bind(limit + 1), " DESC")
      : `SELECT * FROM events WHERE name = ${bind(filter.name)} AND ${after} ORDER BY received_at DESC, id DESC LIMIT ${bind(limit + 1)}`;
  const keyOf = (row: EventRow) => ({ at: row.received_at, id: row.id });
  const pages = await fromEveryShard(env, async (shard) => (await shard.prepare(sql).bind(...params).all<EventRow>()).results);
  return pageOf(mergeNewestFirst(pages, keyOf, limit + 1), limit, keyOf);
}
