/** A row of the D1 `waits` table (migration 0006). */
export interface WaitRow {
  id: string;
  kind: "wait" | "cancel";
  run_id: string;
  step_id: string;
  idx: number;
  event_name: string;
  match_key: string | null;
  expression: string | null;
  trigger: string | null;
  since: number;
  expires_at: number;
}

/** Statements storing waits; a row already stored (a registration delivered twice) is kept as it is. */
export function insertWaitStatements(db: D1Database, rows: WaitRow[]): D1PreparedStatement[] {
  const statement = db.prepare(
    `INSERT INTO waits (id, kind, run_id, step_id, idx, event_name, match_key, expression, trigger, since, expires_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT(id) DO NOTHING`,
  );
  return rows.map((row) =>
    statement.bind(row.id, row.kind, row.run_id, row.step_id, row.idx, row.event_name, row.match_key, row.expression, row.trigger, row.since, row.expires_at),
  );
}

/**
 * Statement finding the waits an event of `eventName` received at `receivedAt` may resolve: those
 * keyed by one of `keys` (the event's own field values), and, unless `keyedOnly`, those with no key
 * (decided by their expression); open when the event was received, however late it is looked up.
 * Both halves read the index waits_lookup, so only candidate rows are read.
 */
export function findWaitsStatement(db: D1Database, eventName: string, keys: string[], receivedAt: number, keyedOnly = false): D1PreparedStatement {
  const keyed = "SELECT * FROM waits WHERE event_name = ?1 AND match_key IN (SELECT value FROM json_each(?2)) AND expires_at > ?3";
  const unkeyed = "SELECT * FROM waits WHERE event_name = ?1 AND match_key IS NULL AND expires_at > ?3";
  return db.prepare(keyedOnly ? keyed : `${keyed} UNION ALL ${unkeyed}`).bind(eventName, JSON.stringify(keys), receivedAt);
}

/**
 * Statement reading the paths the waits of `eventName` are keyed by: one key per path (`path=…`;
 * the path ends at its first `=`, which keys escape), found by skipping from one path to the next
 * in the index waits_lookup, so it reads about one row per path, not one per wait.
 */
export function keyPathsStatement(db: D1Database, eventName: string): D1PreparedStatement {
  return db
    .prepare(
      `WITH RECURSIVE firsts(key) AS (
         SELECT (SELECT match_key FROM waits WHERE event_name = ?1 AND match_key IS NOT NULL ORDER BY match_key LIMIT 1)
         UNION ALL
         SELECT (SELECT match_key FROM waits WHERE event_name = ?1
                   AND match_key >= CASE WHEN instr(firsts.key, '=') > 0 THEN substr(firsts.key, 1, instr(firsts.key, '=') - 1) || '>' ELSE firsts.key || char(1) END
                   ORDER BY match_key LIMIT 1)
         FROM firsts WHERE firsts.key IS NOT NULL
       )
       SELECT key FROM firsts WHERE key IS NOT NULL`,
    )
    .bind(eventName);
}

/** Statement deleting waits by id (resolved, or found stale by their run). */
export function deleteWaitsStatement(db: D1Database, ids: string[]): D1PreparedStatement {
  return db.prepare("DELETE FROM waits WHERE id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(ids));
}

/** Statement deleting every wait of a run (it ended). Uses index waits_run. */
export function deleteRunWaitsStatement(db: D1Database, runId: string): D1PreparedStatement {
  return db.prepare("DELETE FROM waits WHERE run_id = ?1").bind(runId);
}

/** Statement deleting up to `limit` waits that timed out before `now`. Uses index waits_expiry. */
export function pruneExpiredWaitsStatement(db: D1Database, now: number, limit: number): D1PreparedStatement {
  return db.prepare("DELETE FROM waits WHERE rowid IN (SELECT rowid FROM waits WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)").bind(now, limit);
}

/** Where a newest-first read of the event log stopped: the last event read, by receipt and id. */
export interface EventCursor {
  receivedAt: number;
  id: string;
}

/**
 * Statement reading up to `limit` events of `name` received at or after `since`, newest first (by
 * receipt, then by id: events received in one millisecond count in the order of their ids): a wait's look back, and the events that
 * arrived while the wait was being stored. Uses index events_name.
 */
export function eventsSinceStatement(db: D1Database, name: string, since: number, limit: number): D1PreparedStatement {
  return db.prepare(`${EVENTS_SINCE} ORDER BY received_at DESC, id DESC LIMIT ?3`).bind(name, since, limit);
}

/**
 * The next page after `before` of eventsSinceStatement's order, as two statements for one batch:
 * the rest of the cursor's millisecond (a request's events share one), then the events older than
 * it; the page is the first `limit` of both, in that order. Two seeks of index events_name, where a
 * row-value range `(received_at, id) < (…)` would read the cursor's millisecond from its start.
 */
export function eventsBeforeStatements(db: D1Database, name: string, since: number, limit: number, before: EventCursor): D1PreparedStatement[] {
  return [
    db.prepare(`${EVENTS_SINCE} AND received_at = ?4 AND id < ?5 ORDER BY id DESC LIMIT ?3`).bind(name, since, limit, before.receivedAt, before.id),
    db.prepare(`${EVENTS_SINCE} AND received_at < ?4 ORDER BY received_at DESC, id DESC LIMIT ?3`).bind(name, since, limit, before.receivedAt),
  ];
}

const EVENTS_SINCE = "SELECT * FROM events WHERE name = ?1 AND received_at >= ?2";
