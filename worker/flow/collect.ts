import type { StoredEvent } from "../../sdk/event.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import type { Coordinator } from "./coordinator.ts";

// Debounce and batches: events collected under one key, started as one run on the coordinator's alarm.

/** An event handed to a collecting coordinator (debounce, batchEvents), and how to collect it. */
export type CollectAsk =
  | { kind: "debounce"; functionId: string; accepted: AcceptedEvent; position: number; period: number; timeout?: number; keepAll: boolean }
  | { kind: "batchEvents"; functionId: string; accepted: AcceptedEvent; position: number; maxSize: number; timeout: number };

type PendingRow = { id: string; received_at: number; event: string };

/** How long a released event is remembered, so that one brought again (the sweep, after a crash) starts nothing: past the sweep's retries. */
const RELEASED_KEPT_MS = 24 * 60 * 60 * 1000;

/**
 * Collects an event for a debounce or a batch, and arms the alarm for when the run starts: a
 * debounce `period` after the last event (at most `timeout` after the first), a batch `timeout`
 * after its first event, or at once when it is full.
 */
export async function collect(coordinator: Coordinator, ask: CollectAsk, now: number): Promise<void> {
  const { store } = coordinator;
  const { event, receivedAt } = ask.accepted;
  // A debounce whose quiet period ended before this event came (its alarm late: the runtime was down) starts its
  // run first, with the events it had; this one begins the next.
  if (ask.kind === "debounce" && debounceDueAt(coordinator) <= now) await coordinator.exclusively(() => release(coordinator));
  const added = store.write("INSERT INTO pending (id, received_at, position, event) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", event.id, receivedAt, ask.position, JSON.stringify(event));
  // An event collected before (pending, or released already) changes nothing when it comes again.
  if (added === 0) return;
  const started = store.get("first_at");
  const firstAt = started ?? now;
  if (started === undefined) store.set("first_at", now);
  store.set("function_id", ask.functionId);
  store.set("kind", ask.kind);
  store.set("delay", ask.kind === "debounce" ? ask.period : ask.timeout);
  if (ask.kind === "debounce") {
    store.set("keep_all", ask.keepAll);
    store.set("last_at", now);
    const dueAt = Math.min(now + ask.period, ask.timeout === undefined ? Infinity : firstAt + ask.timeout);
    if (ask.timeout !== undefined) store.setIfChanged("timeout", ask.timeout);
    else if (store.get("timeout") !== undefined) store.unset("timeout");
    return coordinator.setAlarm(dueAt);
  }
  store.set("max_size", ask.maxSize);
  if (store.count("pending") >= ask.maxSize) return coordinator.exclusively(() => release(coordinator));
  // A new batch's timeout counts from its first event (an alarm left from the batch before is replaced).
  if (started === undefined || (await coordinator.getAlarm()) === null) await coordinator.setAlarm(firstAt + ask.timeout);
}

/**
 * The alarm's release: a debounce's when its alarm fires (each event moves it), a batch's only once
 * it is full or its timeout has passed since its first event, so an alarm left from an earlier
 * batch releases nothing early.
 */
export async function releaseWhenDue(coordinator: Coordinator, now: number): Promise<void> {
  const { store } = coordinator;
  // An alarm that fired for a period an event has since extended (it came while the alarm was on its way) waits for the new end.
  if (store.get("kind") === "debounce" && debounceDueAt(coordinator) > now) return coordinator.setAlarm(debounceDueAt(coordinator));
  if (store.get("kind") === "batchEvents") {
    const dueAt = (store.get("first_at") ?? now) + (store.get("delay") ?? 0);
    if (store.count("pending") < (store.get("max_size") ?? 1) && now < dueAt) return coordinator.setAlarm(dueAt);
  }
  await coordinator.exclusively(() => release(coordinator));
}

/**
 * When a debounce's collected events are due: a period after the last came, at most its timeout after
 * the first; Infinity when none wait (or when they were collected by a release that did not note when
 * its last came: then its alarm decides, as it did).
 */
function debounceDueAt(coordinator: Coordinator): number {
  const { store } = coordinator;
  const lastAt = store.get("last_at");
  if (store.get("kind") !== "debounce" || lastAt === undefined || store.sql.exec("SELECT 1 FROM pending WHERE released_at IS NULL LIMIT 1").toArray().length === 0) return Infinity;
  const timeout = store.get("timeout");
  return Math.min(lastAt + (store.get("delay") ?? 0), timeout === undefined ? Infinity : (store.get("first_at") ?? lastAt) + timeout);
}

/**
 * Starts the run of what was collected (a debounce's last event, or all of them; a batch's first
 * `maxSize`), then forgets those events. Called exclusively (no collect or other release runs
 * meanwhile): two releases that overlapped while the run started took overlapping events. The run's id derives from its first event, so a release
 * repeated after a crash starts the same run again, which changes nothing.
 */
export async function release(coordinator: Coordinator): Promise<void> {
  const { store } = coordinator;
  const functionId = store.get("function_id");
  const rows = store.sql.exec<PendingRow>("SELECT * FROM pending WHERE released_at IS NULL ORDER BY received_at, position, rowid").toArray();
  if (!functionId || rows.length === 0) return;
  const kind = store.get("kind");
  const taken = kind === "batchEvents" ? rows.slice(0, store.get("max_size") ?? rows.length) : rows;
  const events = taken.map((row) => ({ event: JSON.parse(row.event) as StoredEvent, receivedAt: row.received_at }));
  const outcome = await coordinator.startCollected(functionId, kind === "debounce" ? "debounce" : "batch", events, kind === "debounce" && !store.get("keep_all"));
  const now = Date.now();
  // Events held for a paused function's resume come back to be collected again: forgotten, not remembered as released.
  for (const row of taken) {
    if (outcome === "held") store.write("DELETE FROM pending WHERE id = ? AND received_at = ?", row.id, row.received_at);
    else store.write("UPDATE pending SET released_at = ?, event = '' WHERE id = ? AND received_at = ?", now, row.id, row.received_at);
  }
  store.write("DELETE FROM pending WHERE released_at < ?", now - RELEASED_KEPT_MS);
  const left = store.count("pending");
  store.unset("first_at");
  // A batch with events left over (more than maxSize came at once) starts its next run on time too.
  if (left === 0) await coordinator.deleteAlarm();
  else {
    store.set("first_at", now);
    await coordinator.setAlarm(kind === "batchEvents" && left >= (store.get("max_size") ?? 1) ? now : now + (store.get("delay") ?? 0));
  }
}
