import type { Coordinator } from "./coordinator.ts";
import { DECISION_TTL_MS } from "./decisions.ts";

// A function's budget (sdk/flow.ts `budget`), kept by its coordinator object ("budget", key ""):
// the runs started in the current window, counted as they start, and the steps its runs took,
// summed from the runs index (each run's row learns its steps with its end). Only a function with
// a budget reaches this object.

/** What a budget is asked at a run's start. */
export interface BudgetAsk {
  runId: string;
  runs?: number;
  steps?: number;
  periodMs: number;
}

/**
 * Its answer: start, or the budget is spent. `windowStart` and `round` (resumes so far) name the
 * crossing: the event that says so has an id made of them, so it is sent once per crossing.
 */
export type BudgetAnswer = { start: true } | { start: false; windowStart: number; round: number; used: { runs: number; steps: number } };

/**
 * Counts a run against the budget, or answers that the budget is spent (nothing is counted then).
 * A run asked about again (a redelivered event) is not counted twice. `stepsSince` reads the steps
 * the function's runs took since a time (one D1 read, only for a budget of steps).
 */
export function decideBudget(coordinator: Coordinator, ask: BudgetAsk, now: number, stepsSince: (since: number) => Promise<number>): Promise<BudgetAnswer> {
  // Exclusively: two starts must not both see the last run of the budget free.
  return coordinator.exclusively(async () => {
    const { store } = coordinator;
    if (store.sql.exec("SELECT 1 FROM decisions WHERE run_id = ?", ask.runId).toArray().length > 0) return { start: true };
    const windowStart = Math.floor(now / ask.periodMs) * ask.periodMs;
    const runs = store.get("budget_window") === windowStart ? (store.get("budget_runs") ?? 0) : 0;
    // A resume starts the count again: what was spent before it paid for the pause already.
    const since = Math.max(windowStart, store.get("budget_reset_at") ?? 0);
    const steps = ask.steps === undefined ? 0 : await stepsSince(since);
    if ((ask.runs !== undefined && runs >= ask.runs) || (ask.steps !== undefined && steps >= ask.steps)) {
      return { start: false, windowStart, round: store.get("budget_round") ?? 0, used: { runs, steps } };
    }
    store.setIfChanged("budget_window", windowStart);
    store.set("budget_runs", runs + 1);
    store.write("INSERT INTO decisions (run_id, answer, at) VALUES (?, ?, ?)", ask.runId, JSON.stringify({ start: true }), now);
    store.write("DELETE FROM decisions WHERE at < ?", now - DECISION_TTL_MS);
    return { start: true };
  });
}

/** The function was resumed: its budget counts again from now, and its next crossing is a new one. */
export function resetBudget({ store }: Coordinator, now: number): void {
  store.set("budget_runs", 0);
  store.set("budget_reset_at", now);
  store.set("budget_round", (store.get("budget_round") ?? 0) + 1);
}
