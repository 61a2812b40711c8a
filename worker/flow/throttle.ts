import { gcra } from "../../sdk/flow.ts";
import type { Coordinator } from "./coordinator.ts";
import { DECISION_TTL_MS } from "./decisions.ts";
import type { ThrottleRate } from "./state.ts";

// Throttles: a run asks for its start at its first invocation, and waits its turn in priority order.

/** A throttle's answer to a run asking to start: go now, or wait to be told (by `estimate` if nothing moves ahead). */
export type StartAnswer = { granted: true } | { granted: false; estimate: number };

/**
 * Asks a throttle for `runId`'s start, at its first invocation: granted while the rate allows a
 * start now and no run waits ahead of it; otherwise the run waits, in `orderKey` order (its time
 * of asking, less its priority), and is woken by `slotGranted` when its turn comes. The answer
 * `estimate` is when that would be if no run moves ahead of it: the run asks again then, should
 * its wake-up be lost. Granted once, a run is granted again (a repeated first invocation).
 */
export async function acquireStart(coordinator: Coordinator, runId: string, rate: ThrottleRate, orderKey: number, now: number): Promise<StartAnswer> {
  const { store } = coordinator;
  store.setIfChanged("kind", "throttle");
  store.setIfChanged("rate", rate);
  if (store.sql.exec("SELECT 1 FROM decisions WHERE run_id = ?", runId).toArray().length > 0) return { granted: true };
  store.write("INSERT INTO waiting (run_id, order_key) VALUES (?, ?) ON CONFLICT(run_id) DO NOTHING", runId, orderKey);
  const granted = await grantStarts(coordinator, now, runId);
  if (granted) return { granted: true };
  // Its place in the queue, paced as the rate would pace the runs ahead of it.
  const ahead = store.sql.exec<{ n: number }>(
    "SELECT COUNT(*) AS n FROM waiting WHERE (order_key, rowid) < (SELECT order_key, rowid FROM waiting WHERE run_id = ?)",
    runId,
  ).one().n;
  let tat = store.get("tat") ?? 0;
  let estimate = now;
  for (let i = 0; i <= ahead; i++) ({ startAt: estimate, tat } = gcra({ tat, now, ...rate }));
  return { granted: false, estimate };
}

/**
 * Takes a run that ended out of the queue, and grants the runs now first if the rate allows. A run
 * that ended without starting (`started` false) though a start was granted to it (its wake-up was
 * lost, then it was cancelled) gives that start back: a turn no run used.
 */
export async function withdrawStart(coordinator: Coordinator, runId: string, now: number, started: boolean): Promise<void> {
  const { store } = coordinator;
  store.write("DELETE FROM waiting WHERE run_id = ?", runId);
  const rate = store.get("rate");
  if (!started && rate && store.sql.exec("SELECT 1 FROM decisions WHERE run_id = ?", runId).toArray().length > 0) {
    store.write("DELETE FROM decisions WHERE run_id = ?", runId);
    store.set("tat", Math.max(0, (store.get("tat") ?? 0) - rate.period / rate.limit));
  }
  await grantStarts(coordinator, now);
}

/**
 * Grants starts to the runs waiting first while the rate allows one now, tells them (but `asking`,
 * which learns it from the answer), and arms the alarm for the next start; answers whether `asking` was granted.
 */
export async function grantStarts(coordinator: Coordinator, now: number, asking?: string): Promise<boolean> {
  const { store } = coordinator;
  const rate = store.get("rate");
  if (!rate) return false;
  const granted: string[] = [];
  let tat = store.get("tat") ?? 0;
  for (let first = store.firstWaiting(); first !== undefined; first = store.firstWaiting()) {
    const next = gcra({ tat, now, ...rate });
    if (next.startAt > now) {
      await coordinator.setAlarm(next.startAt);
      break;
    }
    tat = next.tat;
    store.write("INSERT INTO decisions (run_id, answer, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", first, JSON.stringify({ start: true, at: now }), now);
    store.write("DELETE FROM waiting WHERE run_id = ?", first);
    granted.push(first);
  }
  store.set("tat", tat);
  store.write("DELETE FROM decisions WHERE at < ?", now - DECISION_TTL_MS);
  // Told after the grants are stored; a run not told asks again at its own alarm.
  await coordinator.tellGranted(granted.filter((id) => id !== asking));
  return asking !== undefined && granted.includes(asking);
}
