import { utf8Bytes } from "../../sdk/output.ts";
import type { StoredEvent } from "../../sdk/event.ts";
import { answersKey, eventKeyAt, eventMatchKeys, satisfiesIf, waitIndexKey, type WaitCondition } from "../../sdk/wait.ts";
import { toEvent, type EventRow } from "../db/events.ts";
import { deleteRunWaitsStatement, deleteWaitsStatement, eventsBeforeStatements, eventsSinceStatement, findWaitsStatement, insertWaitStatements, keyPathsStatement, type EventCursor, type WaitRow } from "../db/waits.ts";
import { groupByHoldingShard, shardFor, shardsOf, ShardWrites } from "../db/shards.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { runObject } from "../runs/door.ts";
import type { AcceptedEvent } from "../platform/types.ts";

// The waits index in D1 (DESIGN "Waits"): the rows a RunObject registers for its waits and its
// cancelOn entries, and how an accepted event finds the waits it resolves.

/**
 * How a registration reads the event log for each event name: newest first (the event that raced
 * the wait is among the newest), a page at a time, at most `maxEvents`; a window that holds more is
 * cut there, and the run says so in a warning.
 */
export interface LookbackLimits {
  pageSize: number;
  maxEvents: number;
}
const LOOKBACK: LookbackLimits = { pageSize: 500, maxEvents: 5_000 };

/** The most bytes of keys one lookup binds (D1 holds at most 2 MB in one value; a UTF-16 unit is at most 3 bytes of UTF-8, a quote or escape a few more). */
const MAX_KEYS_BYTES = 1_000_000;
/** The most one D1 value holds. */
const D1_VALUE_BYTES = 2_000_000;

/** A wait row and an event that resolves it. */
export interface WaitMatch {
  row: WaitRow;
  accepted: AcceptedEvent;
}

/**
 * The D1 rows of one wait (a step's conditions) or of a run's cancelOn entries (`stepId` empty):
 * one per condition, keyed for the index by waitIndexKey.
 */
export function waitRows(
  kind: WaitRow["kind"],
  runId: string,
  stepId: string,
  trigger: StoredEvent,
  conditions: readonly WaitCondition[],
  since: number,
  expiresAt: (index: number) => number,
): WaitRow[] {
  return conditions.map((condition, idx) => {
    const { key, residualIf } = waitIndexKey(condition, trigger);
    return {
      id: `${runId}:${stepId}:${idx}`,
      kind,
      run_id: runId,
      step_id: stepId,
      idx,
      event_name: condition.event,
      match_key: key,
      expression: residualIf ?? null,
      trigger: residualIf ? JSON.stringify(trigger) : null,
      since,
      expires_at: expiresAt(idx),
    };
  });
}

/** True when `accepted` resolves the wait `row`: its name, its time window, its key (checked exactly) and its expression. */
export function rowMatches(row: WaitRow, accepted: AcceptedEvent): boolean {
  return rowMatcher(row)(accepted);
}

/** rowMatches for one row and many events: the row's trigger is parsed once. */
function rowMatcher(row: WaitRow): (accepted: AcceptedEvent) => boolean {
  const trigger = row.trigger ? (JSON.parse(row.trigger) as StoredEvent) : undefined;
  return ({ event, receivedAt }) => {
    if (row.event_name !== event.name || receivedAt < row.since || receivedAt >= row.expires_at) return false;
    if (row.match_key !== null && !answersKey(event, row.match_key)) return false;
    return satisfiesIf(row.expression ?? undefined, trigger ?? event, event);
  };
}

/**
 * Stores wait rows (each on its event name's shard) and reads the events that already resolve
 * them: those received since each row's `since` (its lookback, and the events that arrived while
 * the wait was on its way here). An event is in the log before the queue carries it, and the
 * consumer looks for waits after that: with DB alone the rows and the read are one D1 batch (one
 * transaction); with shards the rows are stored before the read begins. Either way an event the
 * consumer matched before the rows existed is found here, and one matched after finds the rows.
 * Answers, per row, the earliest event that resolves it, earliest first (so `mode: "any"` takes
 * the earliest of its conditions' events).
 */
export async function registerWaits(env: Env, rows: WaitRow[], limits: LookbackLimits = LOOKBACK): Promise<WaitMatch[]> {
  if (rows.length === 0) return [];
  const names = windowsByName(rows);
  const shards = shardsOf(env);
  if (shards.length === 1) {
    const results = await env.DB.batch<EventRow>([
      ...insertWaitStatements(env.DB, rows),
      ...[...names].map(([name, since]) => eventsSinceStatement(env.DB, name, since, limits.pageSize)),
    ]);
    return earliestMatches(env, rows, names, (i) => new Map([[env.DB, results[rows.length + i]!.results]]), limits);
  }
  const writes = new ShardWrites();
  for (const row of rows) writes.add(shardFor(env, row.event_name), ...insertWaitStatements(shardFor(env, row.event_name), [row]));
  await writes.write(env);
  // Events are on their ids' shards: every shard is read for each name.
  const firstPages = await Promise.all(
    shards.map(async (shard) => await shard.batch<EventRow>([...names].map(([name, since]) => eventsSinceStatement(shard, name, since, limits.pageSize)))),
  );
  return earliestMatches(env, rows, names, (i) => new Map(shards.map((shard, s) => [shard, firstPages[s]![i]!.results])), limits);
}

/**
 * The last look of waits that time out now: per row, the earliest logged event received in its
 * window (before its timeout) that resolves it, earliest first. An event received just before a
 * timeout may still be on its way through the queue when the run wakes to time out; the log,
 * which holds an event before the queue carries it, has it already.
 */
export async function lastLook(env: Env, rows: WaitRow[], limits: LookbackLimits = LOOKBACK): Promise<WaitMatch[]> {
  if (rows.length === 0) return [];
  const names = windowsByName(rows);
  const before = (name: string): EventCursor => ({ receivedAt: Math.max(...rows.filter((row) => row.event_name === name).map((row) => row.expires_at)), id: "" });
  const shards = shardsOf(env);
  const results = await Promise.all(
    shards.map((shard) => shard.batch<EventRow>([...names].flatMap(([name, since]) => eventsBeforeStatements(shard, name, since, limits.pageSize, before(name))))),
  );
  const firstPage = (i: number) => new Map(shards.map((shard, s) => [shard, [...results[s]![2 * i]!.results, ...results[s]![2 * i + 1]!.results].slice(0, limits.pageSize)]));
  return earliestMatches(env, rows, names, firstPage, limits);
}

/** The order of events received in one millisecond: by id, as the log reads them (SQLite's BINARY collation). */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Which of two logged events came first: by receipt, then by id. */
function isEarlier(a: AcceptedEvent, b: AcceptedEvent): boolean {
  return a.receivedAt < b.receivedAt || (a.receivedAt === b.receivedAt && compareIds(a.event.id, b.event.id) < 0);
}

/** Each event name the rows wait for, with the start of the earliest window among them. */
function windowsByName(rows: WaitRow[]): Map<string, number> {
  const sinceByName = new Map<string, number>();
  for (const row of rows) sinceByName.set(row.event_name, Math.min(row.since, sinceByName.get(row.event_name) ?? Infinity));
  return sinceByName;
}

/**
 * Reads each name's window on every shard from its first page there (`firstPages(i)`, the i-th
 * name's, by shard) and answers, per row, the earliest event that resolves it, earliest first.
 */
async function earliestMatches(env: Env, rows: WaitRow[], names: Map<string, number>, firstPages: (index: number) => Map<D1Database, EventRow[]>, limits: LookbackLimits): Promise<WaitMatch[]> {
  const earliest = new Map<string, AcceptedEvent>();
  await Promise.all(
    [...names].map(async ([name, since], i) => {
      const matchers = rows.filter((row) => row.event_name === name).map((row) => ({ id: row.id, matches: rowMatcher(row) }));
      const cuts = await Promise.all(
        [...firstPages(i)].map(([shard, firstPage]) =>
          readWindow(shard, name, since, firstPage, limits, (page) => {
            // Pages come newest first: a page's oldest match is the earliest of its shard yet.
            for (const { id, matches } of matchers) {
              for (let at = page.length - 1; at >= 0; at--) {
                if (!matches(page[at]!)) continue;
                const known = earliest.get(id);
                if (!known || isEarlier(page[at]!, known)) earliest.set(id, page[at]!);
                break;
              }
            }
          }),
        ),
      );
      if (cuts.some(Boolean)) warnCut(rows, name, since, limits.maxEvents);
    }),
  );
  return rows
    .flatMap((row) => {
      const found = earliest.get(row.id);
      return found ? [{ row, found }] : [];
    })
    .sort((a, b) => a.found.receivedAt - b.found.receivedAt || compareIds(a.found.event.id, b.found.event.id))
    .map(({ row, found }) => ({ row, accepted: { event: found.event, receivedAt: found.receivedAt } }));
}

/**
 * Hands `onPage` the first page of one shard (read with the rows) and the older pages after it,
 * while they come back full, up to `maxEvents` in all: one page in memory at a time. Answers true
 * when the last page read was full: the window was cut, and older events in it were not read.
 */
async function readWindow(shard: D1Database, name: string, since: number, firstPage: EventRow[], limits: LookbackLimits, onPage: (page: AcceptedEvent[]) => void): Promise<boolean> {
  const logged = (row: EventRow): AcceptedEvent => ({ event: toEvent(row), receivedAt: row.received_at });
  let page = firstPage;
  let read = page.length;
  let full = page.length === limits.pageSize;
  onPage(page.map(logged));
  while (full && read < limits.maxEvents) {
    const last = page.at(-1)!;
    const before: EventCursor = { receivedAt: last.received_at, id: last.id };
    const size = Math.min(limits.pageSize, limits.maxEvents - read);
    const [sameMs, older] = await shard.batch<EventRow>(eventsBeforeStatements(shard, name, since, size, before));
    page = [...sameMs!.results, ...older!.results].slice(0, size);
    read += page.length;
    full = page.length === size;
    onPage(page.map(logged));
  }
  return full;
}

/** The warning on each run whose wait's look back was cut: its wait may have missed an older event. */
function warnCut(rows: WaitRow[], name: string, since: number, maxEvents: number): void {
  for (const row of rows.filter((entry) => entry.event_name === name)) {
    createLogger({ run_id: row.run_id, step_id: row.step_id || null }).warn(
      `a wait's look back read only the newest ${maxEvents} events of "${name}" received since ${new Date(since).toISOString()}; older events in its window were not read — shorten its lookback`,
      { limit: "waits.lookback_events", event_name: name },
    );
  }
}

/**
 * The open waits the accepted events resolve, oldest event first. Each event asks one indexed
 * lookup, all in one D1 batch, by the keys of its fields; an event with more than MAX_EVENT_KEYS
 * fields first asks which paths the waits of its name are keyed by (one more batch, only for
 * such events), and looks up its keys at those. A wait counts an event received before its
 * timeout, however late the lookup comes: the consumer's `_now` is not used.
 */
export async function findMatchingWaits(env: Env, accepted: AcceptedEvent[], _now?: number): Promise<WaitMatch[]> {
  if (accepted.length === 0) return [];
  // A name's waits are on its shard (and, registered before a shard was added, where the layout of their time put them).
  const byShard = await groupByHoldingShard(env, accepted, (entry) => entry.event.name);
  const found = await Promise.all([...byShard].map(([shard, entries]) => findMatchingWaitsOn(shard, entries)));
  // Events of one millisecond (one request's) in the order they were sent, whichever shard their waits are on.
  const order = new Map(accepted.map((entry, i) => [entry, i]));
  return found.flat().sort((a, b) => a.accepted.receivedAt - b.accepted.receivedAt || order.get(a.accepted)! - order.get(b.accepted)!);
}

async function findMatchingWaitsOn(shard: D1Database, accepted: AcceptedEvent[]): Promise<WaitMatch[]> {
  const keys = accepted.map((entry) => eventMatchKeys(entry.event));
  const wide = [...new Set(accepted.flatMap((entry, i) => (keys[i] === null ? [entry.event.name] : [])))];
  if (wide.length > 0) {
    const paths = await shard.batch<{ key: string }>(wide.map((name) => keyPathsStatement(shard, name)));
    const keyedPaths = new Map(wide.map((name, i) => [name, paths[i]!.results.map((row) => row.key)]));
    accepted.forEach((entry, i) => {
      if (keys[i] !== null) return;
      keys[i] = keyedPaths.get(entry.event.name)!.flatMap((key) => eventKeyAt(entry.event, key) ?? []);
    });
  }
  // An event's keys hold its values: a large one's go in several statements, each parameter under D1's 2 MB.
  const lookups = accepted.flatMap((entry, i) =>
    chunkKeys(keys[i]!).map((chunk, c) => ({ entry, statement: findWaitsStatement(shard, entry.event.name, chunk, entry.receivedAt, c > 0) })),
  );
  const results = await shard.batch<WaitRow>(lookups.map((lookup) => lookup.statement));
  const matches: WaitMatch[] = [];
  results.forEach((result, i) => {
    const { entry } = lookups[i]!;
    for (const row of result.results) if (rowMatches(row, entry)) matches.push({ row, accepted: entry });
  });
  return matches;
}

/** Keys in chunks of at most MAX_KEYS_BYTES of JSON (one chunk, maybe empty, for all but huge values). */
function chunkKeys(keys: string[]): string[][] {
  const chunks: string[][] = [[]];
  let bytes = 0;
  for (const key of keys) {
    const size = key.length * 3 + 4;
    // A key past D1's 2 MB per value is in no wait's row (a large event's value, its data in R2): never bound.
    if (key.length > D1_VALUE_BYTES / 3 && utf8Bytes(key) > D1_VALUE_BYTES) continue;
    if (bytes + size > MAX_KEYS_BYTES && chunks.at(-1)!.length > 0) {
      chunks.push([]);
      bytes = 0;
    }
    chunks.at(-1)!.push(key);
    bytes += size;
  }
  return chunks;
}

/**
 * Hands each match to its run (a wait step resolved, or the run cancelled), one run's matches in
 * the order their events arrived, and answers the statement deleting the rows delivered (the run
 * took the event, or no longer waits). A row whose run could not be reached stays for a redelivery.
 */
export async function deliverMatches(env: Env, matches: WaitMatch[]): Promise<{ deletes: ShardWrites; failed: WaitMatch[] }> {
  const byRun = new Map<string, WaitMatch[]>();
  for (const match of matches) byRun.set(match.row.run_id, [...(byRun.get(match.row.run_id) ?? []), match]);
  const delivered: WaitRow[] = [];
  const failed: WaitMatch[] = [];
  await Promise.all(
    [...byRun.values()].map(async (list) => {
      for (const match of list) {
        const run = runObject(env, match.row.run_id);
        try {
          if (match.row.kind === "wait") await run.resolveWait(match.row.step_id, match.row.idx, match.accepted.event, match.accepted.receivedAt);
          else await run.cancelIf({ type: "event", event: match.accepted.event });
          delivered.push(match.row);
        } catch (err) {
          createLogger({ run_id: match.row.run_id, event_id: match.accepted.event.id }).error("could not deliver an event to its waiting run; will retry", { error: String(err) });
          failed.push(match);
        }
      }
    }),
  );
  return { deletes: await deleteWaitsWrites(env, delivered), failed };
}

/** The writes deleting wait rows, on the shards that may hold them (their event names'). */
export async function deleteWaitsWrites(env: Env, rows: WaitRow[]): Promise<ShardWrites> {
  const writes = new ShardWrites();
  for (const [shard, part] of await groupByHoldingShard(env, rows, (row) => row.event_name)) writes.add(shard, deleteWaitsStatement(shard, part.map((row) => row.id)));
  return writes;
}

/** Deletes every wait of a run (it ended), on every shard: its waits' names are not kept. Uses index waits_run. */
export async function clearRunWaits(env: Env, runId: string): Promise<void> {
  await Promise.all(shardsOf(env).map((shard) => shard.batch([deleteRunWaitsStatement(shard, runId)])));
}
