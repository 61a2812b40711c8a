// Shards: the event log, the runs index and the waits spread over every D1 database bound as `DB`,
// `DB_1`, `DB_2`, … (consecutive; the first gap ends the list). A row lives on the shard its key
// names under the layout it was written in: an event by its id, a run's index row by the run's id,
// a wait by its event name. The small global tables (crons, apps, pauses, cancellations) stay on DB.
// With only DB bound, every function here answers DB without a read.

import type { Env } from "../platform/env.ts";
import { StepflareError } from "../platform/errors.ts";
import { oldestReceiptSql, ORDERED_AHEAD_MS } from "./events.ts";
import { FUNCTIONS_WITH_RUNS } from "./runFunctions.ts";

/** The migration every shard must have applied before the Worker uses it (a test keeps it the newest file). */
export const LATEST_MIGRATION = "0020_runs_keyed_by_function.sql";

/** How long an isolate trusts the layouts it read before reading them again. */
const LAYOUTS_TTL_MS = 60_000;

const shardsByEnv = new WeakMap<object, D1Database[]>();

/**
 * The databases bound as shards, in order: DB, DB_1, DB_2, … up to the first binding missing.
 *
 * @example
 * shardsOf(env).length; // 3 with DB, DB_1 and DB_2 bound
 */
export function shardsOf(env: Env): D1Database[] {
  let shards = shardsByEnv.get(env);
  if (!shards) {
    shards = [env.DB];
    for (let i = 1; env[`DB_${i}`]; i++) shards.push(env[`DB_${i}`]!);
    shardsByEnv.set(env, shards);
  }
  return shards;
}

/** The binding name of shard `index`. */
export function shardName(index: number): string {
  return index === 0 ? "DB" : `DB_${index}`;
}

/**
 * Which of `count` shards holds `key`: FNV-1a over the key, modulo the count. Pure and stable, so a
 * layout (a count) always puts a key in the same place.
 */
export function shardIndex(key: string, count: number): number {
  if (count <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}

/** The shard new rows keyed by `key` go to: the current layout's. */
export function shardFor(env: Env, key: string): D1Database {
  const shards = shardsOf(env);
  return shards[shardIndex(key, shards.length)]!;
}

/**
 * Every shard that may hold a row keyed by `key` and written since `since` (default: ever): where
 * each layout in use since then puts it, the current one first. One shard, read from nothing, while
 * only DB is bound.
 */
export async function shardsHolding(env: Env, key: string, since = -Infinity): Promise<D1Database[]> {
  return [...(await groupByHoldingShard(env, [key], (k) => k, () => since)).keys()];
}

/**
 * Groups keyed items by every shard that may hold them (shardsHolding for many keys at once, each
 * item written since `sinceOf(item)`): a read by key asks each shard once, for its share.
 */
export async function groupByHoldingShard<T>(env: Env, items: T[], keyOf: (item: T) => string, sinceOf: (item: T) => number = () => -Infinity): Promise<Map<D1Database, T[]>> {
  const shards = shardsOf(env);
  const eras = shards.length === 1 ? [] : await layoutEras(env);
  const groups = new Map<D1Database, T[]>();
  const add = (index: number, item: T) => {
    const shard = shards[index]!;
    const group = groups.get(shard);
    if (group?.at(-1) === item) return;
    if (group) group.push(item);
    else groups.set(shard, [item]);
  };
  for (const item of items) {
    const key = keyOf(item);
    add(shardIndex(key, shards.length), item);
    const since = sinceOf(item);
    for (const era of eras) if (era.until > since) add(shardIndex(key, era.count), item);
  }
  return groups;
}

/** A layout the deployment wrote under before the current one, and until when (epoch ms) it may have. */
interface LayoutEra {
  count: number;
  until: number;
}

/**
 * How long after a larger count is first seen rows may still be written under the smaller one: a
 * deploy that adds a shard replaces the Worker's isolates over seconds to minutes (hours with
 * gradual deployments), and until then the old ones write where they always did.
 */
const LAYOUT_CHANGE_MARGIN_MS = 24 * 60 * 60 * 1000;

let layouts: { count: number; at: number; eras: Promise<LayoutEra[]> } | undefined;

/**
 * The layouts rows may have been written under besides the current one, each with its end: the
 * first use of the next larger count recorded in `shard_layouts` (DB alone, count 1, needs no record
 * and ended at the first count recorded), plus a margin for the isolates a deploy had not replaced
 * yet. A layout counts only while its shards hold a row older than its end: a deployment made with
 * shards never had DB alone, and a layout whose rows retention has removed is not asked any more.
 * Read once a minute per isolate, after this isolate has recorded the current count.
 */
async function layoutEras(env: Env): Promise<LayoutEra[]> {
  const count = shardsOf(env).length;
  const now = Date.now();
  if (!layouts || layouts.count !== count || now - layouts.at > LAYOUTS_TTL_MS) {
    const eras = readLayoutEras(env, count);
    layouts = { count, at: now, eras };
    eras.catch(() => (layouts = undefined));
  }
  return layouts.eras;
}

async function readLayoutEras(env: Env, count: number): Promise<LayoutEra[]> {
  await recordLayout(env);
  const { results } = await env.DB.prepare("SELECT count, first_seen FROM shard_layouts ORDER BY first_seen, count").all<{ count: number; first_seen: number }>();
  // A count was in use until a larger one was first seen; the current count's rows are placed by it.
  const endOf = (count: number, since: number) => Math.min(...results.filter((row) => row.count > count && row.first_seen >= since).map((row) => row.first_seen), Infinity);
  const candidates = [{ count: 1, ended: endOf(1, -Infinity) }, ...results.filter((row) => row.count < count).map((row) => ({ count: row.count, ended: endOf(row.count, row.first_seen) }))];
  const oldest = await oldestRowTimes(shardsOf(env).slice(0, Math.max(...candidates.map((era) => era.count))));
  return candidates
    .filter((era) => era.ended === Infinity || oldest.slice(0, era.count).some((at) => at < era.ended))
    .map((era) => ({ count: era.count, until: era.ended + LAYOUT_CHANGE_MARGIN_MS }));
}

/**
 * The time of each shard's oldest event, runs index row or wait (Infinity for an empty shard): one
 * statement a shard: a seek in index events_received and one in the primary key (the events,
 * oldestReceiptSql), two per function present in the runs index's key (its id, then its oldest
 * run: runFunctions.ts), and the oldest wait by rowid (waits have no index by their start, and a
 * rowid table gives each new row a larger rowid).
 */
async function oldestRowTimes(shards: D1Database[]): Promise<number[]> {
  return Promise.all(
    shards.map(async (shard) => {
      const row = await shard
        .prepare(
          `SELECT MIN(COALESCE(${oldestReceiptSql("?2")}, ?1),
                      COALESCE((${FUNCTIONS_WITH_RUNS} SELECT MIN((SELECT MIN(started_at) FROM runs WHERE function_id = fns.id)) FROM fns WHERE fns.id IS NOT NULL), ?1),
                      COALESCE((SELECT since FROM waits ORDER BY rowid LIMIT 1), ?1)) AS oldest`,
        )
        .bind(Number.MAX_SAFE_INTEGER, Date.now() + ORDERED_AHEAD_MS)
        .first<{ oldest: number }>();
      const oldest = row?.oldest ?? Number.MAX_SAFE_INTEGER;
      return oldest >= Number.MAX_SAFE_INTEGER ? Infinity : oldest;
    }),
  );
}

/** Makes the next read of the layouts go to `shard_layouts` (for a test that records a past layout by hand). */
export function forgetLayouts(): void {
  layouts = undefined;
}

/** The shard counts rows may have been written under, the current one first (shards' tests and the docs' example). */
export async function layoutCounts(env: Env): Promise<number[]> {
  const count = shardsOf(env).length;
  if (count === 1) return [1];
  return [...new Set([count, ...(await layoutEras(env)).map((era) => era.count)])];
}

let recorded: { count: number; done: Promise<void> } | undefined;

/**
 * Records the current shard count in `shard_layouts` (once per isolate and count; nothing while only
 * DB is bound). Every writer of sharded rows awaits it first, so no row is written under a layout a
 * later reader does not know.
 */
export async function recordLayout(env: Env): Promise<void> {
  const count = shardsOf(env).length;
  if (count === 1) return;
  if (recorded?.count !== count) {
    const done = env.DB.prepare("INSERT INTO shard_layouts (count, first_seen) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
      .bind(count, Date.now())
      .run()
      .then(() => undefined);
    recorded = { count, done };
    done.catch(() => (recorded = undefined));
  }
  return recorded.done;
}

/** Asks every shard the same read and answers their rows in shard order (listings merge them). */
export async function fromEveryShard<T>(env: Env, read: (shard: D1Database) => Promise<T[]>): Promise<T[][]> {
  return Promise.all(shardsOf(env).map(read));
}

/**
 * D1 statements bound for their shards, written as one batch per shard (the shards in parallel,
 * each batch in the order its statements were added). With only DB, one batch, as before shards.
 *
 * @example
 * const writes = new ShardWrites();
 * writes.add(shardFor(env, runId), insertRunStatement(shardFor(env, runId), entry));
 * await writes.write(env);
 */
export class ShardWrites {
  private readonly byShard = new Map<D1Database, D1PreparedStatement[]>();

  add(shard: D1Database, ...statements: D1PreparedStatement[]): this {
    if (statements.length > 0) this.byShard.set(shard, [...(this.byShard.get(shard) ?? []), ...statements]);
    return this;
  }

  /** Adds every statement of `other`, after this one's on each shard. */
  addAll(other: ShardWrites): this {
    for (const [shard, statements] of other.byShard) this.add(shard, ...statements);
    return this;
  }

  get size(): number {
    let size = 0;
    for (const statements of this.byShard.values()) size += statements.length;
    return size;
  }

  async write(env: Env): Promise<void> {
    if (this.byShard.size === 0) return;
    await recordLayout(env);
    await Promise.all([...this.byShard].map(([shard, statements]) => shard.batch(statements)));
  }

  /**
   * Writes these, then `after` once these went through on every shard (a batch per shard is its own
   * transaction, and one may fail while another commits). With DB alone, both in one batch: one
   * transaction, one round trip, as before shards.
   */
  async writeThen(env: Env, after: ShardWrites): Promise<void> {
    if (shardsOf(env).length === 1) return this.addAll(after).write(env);
    await this.write(env);
    await after.write(env);
  }
}

let migrationsChecked: { count: number; done: Promise<void> } | undefined;

/**
 * Refuses to work on shards that lack the newest migration: throws a StepflareError (a 503) naming
 * each. Asked once per isolate, and only when more than DB is bound (DB alone is as before shards).
 */
export async function checkShardMigrations(env: Env): Promise<void> {
  const shards = shardsOf(env);
  if (shards.length === 1) return;
  if (migrationsChecked?.count !== shards.length) {
    const done = findShardsBehind(shards).then((behind) => {
      if (behind.length === 0) return;
      throw new StepflareError(
        "config.invalid",
        `D1 shard${behind.length > 1 ? "s" : ""} ${behind.join(", ")} ${behind.length > 1 ? "lack" : "lacks"} migration ${LATEST_MIGRATION}: apply the migrations to every shard (\`npx wrangler d1 migrations apply <database> --remote\` for each, docs/shards.md), then retry`,
      );
    });
    migrationsChecked = { count: shards.length, done };
    done.catch(() => (migrationsChecked = undefined));
  }
  return migrationsChecked.done;
}

async function findShardsBehind(shards: D1Database[]): Promise<string[]> {
  const applied = await Promise.all(
    shards.map((shard) =>
      shard
        .prepare("SELECT 1 AS ok FROM d1_migrations WHERE name = ?1")
        .bind(LATEST_MIGRATION)
        .first<{ ok: number }>()
        .then((row) => row !== null)
        // A database never migrated has no d1_migrations table; any other failure is D1's, not a shard behind.
        .catch((err: unknown) => {
          if (String(err).includes("no such table")) return false;
          throw err;
        }),
    ),
  );
  return applied.flatMap((ok, index) => (ok ? [] : [shardName(index)]));
}

/**
 * The rows of one query asked of every shard, merged newest first by `(at, id)` and cut to `limit`
 * (a listing's page: each shard answered its own first `limit` after the same cursor).
 */
export function mergeNewestFirst<T>(pages: T[][], keyOf: (row: T) => { at: number; id: string }, limit: number): T[] {
  return pages
    .flat()
    .sort((a, b) => {
      const ka = keyOf(a);
      const kb = keyOf(b);
      return kb.at - ka.at || (kb.id < ka.id ? -1 : kb.id > ka.id ? 1 : 0);
    })
    .slice(0, limit);
}
