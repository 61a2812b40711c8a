// The capacity model: from what one run (or one event) costs a D1 database and the queue, measured by
// bench/capacity.mjs, and Cloudflare's published limits, how many fit in a month on N D1 databases
// (shards) before each limit binds, and which binds first. Pure arithmetic; docs/performance.md
// ("Capacity") shows its table and where each limit comes from.

/**
 * The limits the model divides by. Cloudflare's are from its limits pages (D1, Queues); the pruning
 * pace is Stepflare's own: the tick deletes at most PRUNE_LIMIT (500) rows a table once a minute
 * (worker/schedule/tick.ts), and rows must leave as fast as they come or the database only grows.
 */
export const LIMITS = {
  /** One D1 database holds at most 10 GB (Workers Paid; it cannot be raised). */
  d1DatabaseBytes: 10e9,
  /** A D1 database runs its queries one at a time: about 1,000 a second when each takes 1 ms. */
  d1QueriesPerSecond: 1000,
  /** One queue carries at most 5,000 messages a second. */
  queueMessagesPerSecond: 5000,
  /** Rows of each table the retention pruning deletes a minute, per database. */
  pruneRowsPerMinute: 500,
};

/** The model's month: 30 days. */
export const SECONDS_PER_MONTH = 30 * 86_400;
const DAYS_PER_MONTH = 30;

/** The order in which bounds are named when two are equal. */
const BOUNDS = ["storage", "pruning", "thread", "queue"];

/**
 * How many units (runs, each with its event, or events alone) a month fit before each limit binds,
 * and which binds first, for `perUnit` = { d1Bytes, d1Statements, queueMessages } measured per unit.
 * - storage: the shards' bytes hold `retentionDays` of units;
 * - pruning: each unit leaves one row in the events table and, for a run, one in the runs table, and
 *   each shard prunes `pruneRowsPerMinute` of each table a minute;
 * - thread: each shard runs `d1QueriesPerSecond` statements a second;
 * - queue: `queues` queues carry `queueMessagesPerSecond` messages a second each.
 * `threadBindsAtMs` is the average time a statement would have to take for the thread to bind first.
 *
 * @example
 * capacity({ perUnit: { d1Bytes: 2000, d1Statements: 3, queueMessages: 1 }, retentionDays: 30, shards: 1 })
 * // { shards: 1, retentionDays: 30, queues: 1, bounds: { storage: 5e6, pruning: 21.6e6, thread: 864e6, queue: 12.96e9 },
 * //   binds: "storage", fits: 5e6, threadBindsAtMs: 172.8 }
 */
export function capacity({ perUnit, retentionDays, shards, queues = 1, limits = LIMITS }) {
  for (const [name, value] of Object.entries({ d1Bytes: perUnit.d1Bytes, d1Statements: perUnit.d1Statements, queueMessages: perUnit.queueMessages, retentionDays, shards, queues })) {
    if (!(value > 0)) throw new RangeError(`capacity: ${name} must be a positive number, got ${value}`);
  }
  const bounds = {
    storage: ((shards * limits.d1DatabaseBytes) / perUnit.d1Bytes) * (DAYS_PER_MONTH / retentionDays),
    pruning: shards * limits.pruneRowsPerMinute * 60 * 24 * DAYS_PER_MONTH,
    thread: ((shards * limits.d1QueriesPerSecond) / perUnit.d1Statements) * SECONDS_PER_MONTH,
    queue: ((queues * limits.queueMessagesPerSecond) / perUnit.queueMessages) * SECONDS_PER_MONTH,
  };
  const binds = BOUNDS.reduce((first, name) => (bounds[name] < bounds[first] ? name : first));
  // The thread's bound assumes Cloudflare's 1 ms a query; it binds first once statements take this long on average.
  const nextBelowThread = Math.min(...BOUNDS.filter((name) => name !== "thread").map((name) => bounds[name]));
  const threadBindsAtMs = (1000 / limits.d1QueriesPerSecond) * (bounds.thread / nextBelowThread);
  return { shards, retentionDays, queues, bounds, binds, fits: bounds[binds], threadBindsAtMs };
}

/** Events a request holds when they are sent batched, as bench/capacity.mjs sends them. */
const EVENTS_PER_REQUEST = 100;

/**
 * Statements per unit on `shards` shards, from those measured on one: a request's insert and its
 * dispatch's mark, one statement each on one database, become one per shard the request's events
 * land on (all of them, for 100 events on up to 16 shards), shared by the request's events. Events
 * sent alone land on one shard and cost what they did.
 */
export function spreadStatements(batched, shards) {
  return { ...batched, d1Statements: batched.d1Statements + (2 * (shards - 1)) / EVENTS_PER_REQUEST };
}

/**
 * The table's rows: one per (payload, shards, retention), with the thread bound for both ways of
 * sending (`alone`: one event a request; `batched`: 100 a request, spread over the shards) and the
 * other bounds from the `alone` figures (its statements are the most; bytes and messages do not
 * depend on the sending).
 * `measured` = { [payload label]: { alone: perUnit, batched: perUnit } }.
 *
 * @example
 * capacityTable({ measured: { "1 KiB": { alone, batched } }, shards: [1, 4, 16], retentionDays: [7, 30] })
 */
export function capacityTable({ measured, shards, retentionDays, limits = LIMITS }) {
  return Object.entries(measured).flatMap(([payload, { alone, batched }]) =>
    retentionDays.flatMap((days) =>
      shards.map((n) => {
        const worst = capacity({ perUnit: alone, retentionDays: days, shards: n, limits });
        const best = capacity({ perUnit: spreadStatements(batched, n), retentionDays: days, shards: n, limits });
        return { payload, retentionDays: days, shards: n, ...worst.bounds, threadBatched: best.bounds.thread, binds: worst.binds, fits: worst.fits, threadBindsAtMs: worst.threadBindsAtMs };
      }),
    ),
  );
}

/** A count a month as people read it: 4.3 M, 1.2 B, 860 k. */
export function formatCount(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} k`;
  return n.toFixed(0);
}

/** The table as Markdown, the way docs/performance.md shows it. */
export function formatCapacityTable(rows) {
  const lines = [
    "| payload | retention | shards | storage | pruning | thread (sent alone) | thread (100 a request) | queue (one) | binds first | thread first from |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const bounds = ["storage", "pruning", "thread", "threadBatched", "queue"].map((key) => formatCount(row[key]));
    const cells = [row.payload, `${row.retentionDays} d`, row.shards, ...bounds, row.binds, `${Math.round(row.threadBindsAtMs)} ms`];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
