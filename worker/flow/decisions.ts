import { gcra } from "../../sdk/flow.ts";
import { FINAL_STATUSES } from "../platform/types.ts";
import type { Coordinator } from "./coordinator.ts";

// The controls decided once at dispatch, per run: idempotency, rate limits and singletons. A run
// asked about again (a redelivered event) gets the answer it got the first time.

/** How long a decision is remembered, so a redelivered event gets the same answer: past the queue's retries. */
export const DECISION_TTL_MS = 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const SINGLETON_PENDING_MS = 60_000;

/** What a coordinator is asked at dispatch, for one run of its function under its key. */
export type FlowAsk =
  | { kind: "idempotency"; runId: string }
  | { kind: "rateLimit"; runId: string; limit: number; period: number }
  | { kind: "singleton"; runId: string; mode: "skip" | "cancel" };

/** Its answer: start (at a time), or skip. */
export type FlowAnswer = { start: true; at: number } | { start: false; reason: string };

/** Decides whether (and when) a run starts; the same run asked again gets the same answer. */
export async function admit(coordinator: Coordinator, ask: FlowAsk, now: number): Promise<FlowAnswer> {
  const { store } = coordinator;
  const known = store.sql.exec<{ answer: string }>("SELECT answer FROM decisions WHERE run_id = ?", ask.runId).toArray()[0];
  if (known) return JSON.parse(known.answer) as FlowAnswer;
  // A singleton asks the active run how it stands: no other ask may slip in meanwhile.
  const answer = ask.kind === "singleton" ? await coordinator.exclusively(() => decideSingleton(coordinator, ask, now)) : decide(coordinator, ask, now);
  store.write("INSERT INTO decisions (run_id, answer, at) VALUES (?, ?, ?)", ask.runId, JSON.stringify(answer), now);
  store.write("DELETE FROM decisions WHERE at < ?", now - DECISION_TTL_MS);
  return answer;
}

/**
 * One active run per key: while the last run started is not over, a new one is skipped (`skip`)
 * or the old one is cancelled (`cancel`). A run admitted but not yet stored counts as active for
 * a minute, the time its dispatch may take.
 */
async function decideSingleton(coordinator: Coordinator, ask: Extract<FlowAsk, { kind: "singleton" }>, now: number): Promise<FlowAnswer> {
  const { store } = coordinator;
  const active = store.get("active_run");
  if (active && active !== ask.runId) {
    const state = await coordinator.runStatus(active);
    const isActive = state ? !FINAL_STATUSES.has(state.status) : now - (store.get("active_at") ?? 0) < SINGLETON_PENDING_MS;
    if (isActive && ask.mode === "skip") return { start: false, reason: `singleton: run ${active} is still active` };
    if (isActive) await coordinator.cancelRun(active, { type: "singleton", run_id: ask.runId });
  }
  store.set("active_run", ask.runId);
  store.set("active_at", now);
  return { start: true, at: now };
}

function decide({ store }: Coordinator, ask: Exclude<FlowAsk, { kind: "singleton" }>, now: number): FlowAnswer {
  switch (ask.kind) {
    case "idempotency": {
      // At most one run per key value per 24 hours.
      const last = store.get("started_at") ?? -Infinity;
      if (now - last < DAY_MS) return { start: false, reason: "idempotency: a run with this key started in the last 24 hours" };
      store.set("started_at", now);
      return { start: true, at: now };
    }
    case "rateLimit": {
      // Inngest's buckets: one run per `period / limit`, no burst, so no window of `period` holds more than `limit`.
      const next = gcra({ tat: store.get("tat") ?? 0, now, limit: ask.limit, period: ask.period, burst: 1 });
      if (next.startAt > now) return { start: false, reason: `rateLimit: more than ${ask.limit} runs in ${ask.period} ms` };
      store.set("tat", next.tat);
      return { start: true, at: now };
    }
  }
}
