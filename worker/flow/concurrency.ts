import type { Coordinator } from "./coordinator.ts";
import type { FlowStore } from "./state.ts";

// Concurrency limits: slots leased to runs while an invocation runs, and the queue of runs waiting
// for one, in priority order.

/** How long a concurrency slot is held without renewal: a running invocation renews it every third of this. */
export const LEASE_MS = 30_000;

/**
 * Asks for a concurrency slot for an invocation of `runId`: granted (or renewed, for a run that
 * holds one) while fewer than `limit` runs hold one and no run waits ahead of it; otherwise the
 * run waits, in `orderKey` order (its time of asking, less its priority), and is woken by
 * `slotGranted` when a slot is given to it. A lease not renewed within LEASE_MS is given back,
 * so a run whose object died holds no slot for ever.
 */
export async function acquireSlot(coordinator: Coordinator, runId: string, limit: number, orderKey: number, now: number): Promise<boolean> {
  const { store } = coordinator;
  store.setIfChanged("kind", "concurrency");
  store.setIfChanged("limit", limit);
  reclaimExpired(store, now);
  const held = store.sql.exec("SELECT 1 FROM leases WHERE run_id = ?", runId).toArray().length > 0;
  const first = store.firstWaiting();
  if (held || (store.count("leases") < limit && (first === undefined || first === runId))) {
    store.write("INSERT INTO leases (run_id, expires_at) VALUES (?, ?) ON CONFLICT(run_id) DO UPDATE SET expires_at = excluded.expires_at", runId, now + LEASE_MS);
    store.write("DELETE FROM waiting WHERE run_id = ?", runId);
    await armConcurrency(coordinator, now);
    return true;
  }
  store.write("INSERT INTO waiting (run_id, order_key) VALUES (?, ?) ON CONFLICT(run_id) DO NOTHING", runId, orderKey);
  await armConcurrency(coordinator, now);
  return false;
}

/** Gives back `runId`'s slot (its invocation ended) and hands free slots to the runs waiting first. */
export async function releaseSlot(coordinator: Coordinator, runId: string, now: number): Promise<void> {
  coordinator.store.write("DELETE FROM leases WHERE run_id = ?", runId);
  coordinator.store.write("DELETE FROM waiting WHERE run_id = ?", runId);
  await grantWaiting(coordinator, now);
}

/** Hands the free slots to the runs waiting first, then tells them. */
export async function grantWaiting(coordinator: Coordinator, now: number): Promise<void> {
  const { store } = coordinator;
  reclaimExpired(store, now);
  const free = (store.get("limit") ?? 1) - store.count("leases");
  const granted = free > 0 ? store.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting ORDER BY order_key, rowid LIMIT ?", free).toArray() : [];
  for (const { run_id } of granted) {
    store.write("INSERT INTO leases (run_id, expires_at) VALUES (?, ?) ON CONFLICT(run_id) DO NOTHING", run_id, now + LEASE_MS);
    store.write("DELETE FROM waiting WHERE run_id = ?", run_id);
  }
  await armConcurrency(coordinator, now);
  // The runs are told after the slots are stored; one not told in time asks again at its own alarm.
  await coordinator.tellGranted(granted.map(({ run_id }) => run_id));
}

function reclaimExpired(store: FlowStore, now: number): void {
  store.write("DELETE FROM leases WHERE expires_at <= ?", now);
}

/** The alarm stands at the earliest lease expiry while runs wait, so an expired slot is given on. */
async function armConcurrency({ store, setAlarm }: Coordinator, now: number): Promise<void> {
  const earliest = store.sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM leases").one().at;
  if (store.count("waiting") > 0) await setAlarm(earliest ?? now);
}
