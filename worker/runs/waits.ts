import type { StoredEvent } from "../../sdk/event.ts";
import { eventMatchKeys, satisfiesIf, waitIndexKey, type WaitCondition } from "../../sdk/wait.ts";
import { toEvent, type EventRow } from "../db/events.ts";
import { deleteWaitsStatement, eventsSinceStatement, findWaitsStatement, insertWaitStatements, type WaitRow } from "../db/waits.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { runObject } from "../runs/door.ts";
import type { AcceptedEvent } from "../platform/types.ts";

// The waits index in D1 (DESIGN "Waits"): the rows a RunObject registers for its waits and its
// cancelOn entries, and how an accepted event finds the waits it resolves.

/** Events a registration's look back reads per event name: the newest waits rarely need more. */
const LOOKBACK_LIMIT = 1000;

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

/** True when `accepted` resolves the wait `row`: its name, its time window, its key and its expression. */
export function rowMatches(row: WaitRow, { event, receivedAt }: AcceptedEvent, keys: ReadonlySet<string>): boolean {
  if (row.event_name !== event.name || receivedAt < row.since || receivedAt >= row.expires_at) return false;
  if (row.match_key !== null && !keys.has(row.match_key)) return false;
  return satisfiesIf(row.expression ?? undefined, row.trigger ? (JSON.parse(row.trigger) as StoredEvent) : event, event);
}

/**
 * Stores wait rows and, in the same D1 batch, reads the events that already resolve them: those
 * received since each row's `since` (its lookback, and the events that arrived while the wait was
 * on its way here). D1 runs a batch as one transaction, and an event is in the log before the
 * queue carries it: an event the consumer matched before the rows existed is found here, and one
 * matched after finds the rows. Answers, per row, the earliest event that resolves it.
 */
export async function registerWaits(env: Env, rows: WaitRow[]): Promise<WaitMatch[]> {
  if (rows.length === 0) return [];
  const names = [...new Set(rows.map((row) => row.event_name))];
  const since = Math.min(...rows.map((row) => row.since));
  const results = await env.DB.batch<EventRow>([
    ...insertWaitStatements(env.DB, rows),
    ...names.map((name) => eventsSinceStatement(env.DB, name, since, LOOKBACK_LIMIT)),
  ]);
  const events = results.slice(rows.length).flatMap((result) => result.results.map((row) => ({ event: toEvent(row), receivedAt: row.received_at })));
  events.sort((a, b) => a.receivedAt - b.receivedAt);
  const keyed = events.map((accepted) => ({ accepted, keys: new Set(eventMatchKeys(accepted.event)) }));
  return rows.flatMap((row) => {
    const found = keyed.find(({ accepted, keys }) => rowMatches(row, accepted, keys));
    return found ? [{ row, accepted: found.accepted }] : [];
  });
}

/**
 * The open waits the accepted events resolve, in one D1 batch of indexed lookups (one per event),
 * oldest event first.
 */
export async function findMatchingWaits(env: Env, accepted: AcceptedEvent[], now: number): Promise<WaitMatch[]> {
  if (accepted.length === 0) return [];
  const keys = accepted.map((entry) => eventMatchKeys(entry.event));
  const results = await env.DB.batch<WaitRow>(accepted.map((entry, i) => findWaitsStatement(env.DB, entry.event.name, keys[i]!, now)));
  const matches: WaitMatch[] = [];
  results.forEach((result, i) => {
    const keySet = new Set(keys[i]);
    for (const row of result.results) if (rowMatches(row, accepted[i]!, keySet)) matches.push({ row, accepted: accepted[i]! });
  });
  return matches.sort((a, b) => a.accepted.receivedAt - b.accepted.receivedAt);
}

/**
 * Hands each match to its run (a wait step resolved, or the run cancelled), one run's matches in
 * the order their events arrived, and answers the statement deleting the rows delivered (the run
 * took the event, or no longer waits). A row whose run could not be reached stays for a redelivery.
 */
export async function deliverMatches(env: Env, matches: WaitMatch[]): Promise<{ deleteStatements: D1PreparedStatement[]; failed: WaitMatch[] }> {
  const byRun = new Map<string, WaitMatch[]>();
  for (const match of matches) byRun.set(match.row.run_id, [...(byRun.get(match.row.run_id) ?? []), match]);
  const delivered: string[] = [];
  const failed: WaitMatch[] = [];
  await Promise.all(
    [...byRun.values()].map(async (list) => {
      for (const match of list) {
        const run = runObject(env, match.row.run_id);
        try {
          if (match.row.kind === "wait") await run.resolveWait(match.row.step_id, match.row.idx, match.accepted.event);
          else await run.cancelIf({ type: "event", event: match.accepted.event });
          delivered.push(match.row.id);
        } catch (err) {
          createLogger({ run_id: match.row.run_id, event_id: match.accepted.event.id }).error("could not deliver an event to its waiting run; will retry", { error: String(err) });
          failed.push(match);
        }
      }
    }),
  );
  return { deleteStatements: delivered.length > 0 ? [deleteWaitsStatement(env.DB, delivered)] : [], failed };
}
