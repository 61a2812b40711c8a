import type { Coordinator } from "./coordinator.ts";
import { DECISION_TTL_MS } from "./decisions.ts";

// A function's budget (sdk/flow.ts `budget`), kept by its coordinator object ("budget", key ""):
// the runs started in the last `period` are its decisions (one row per run started, kept a day), and
// the steps its runs took are summed from the runs index (each run's row learns its steps with its
// end). A rolling window: no hour or day boundary hands a spent budget back at once. Only a function
// with a budget reaches this object.

/** What a budget is asked at a run's start. */
export interface BudgetAsk {
  runId: string;
  runs?: number;
  steps?: number;
  periodMs: number;
}

/**
 * Its answer: start, or the budget is spent since `since`. `round` (resumes so far) names the
 * crossing: the event that says so has an id made of it, so it is sent once per crossing.
 */
export type BudgetAnswer = { start: true } | { start: false; since: number; round: number; used: { runs: number; steps: number } };

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
    // A resume starts the count again: what was spent before it paid for the pause already.
    const since = Math.max(now - ask.periodMs, store.get("budget_reset_at") ?? 0);
    const runs = store.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM decisions WHERE at >= ?", since).one().n;
    const steps = ask.steps === undefined ? 0 : await stepsSince(since);
    if ((ask.runs !== undefined && runs >= ask.runs) || (ask.steps !== undefined && steps >= ask.steps)) {
      return { start: false, since, round: store.get("budget_round") ?? 0, used: { runs, steps } };
    }
    store.write("INSERT INTO decisions (run_id, answer, at) VALUES (?, ?, ?)", ask.runId, '{"start":true}', now);
    store.write("DELETE FROM decisions WHERE at < ?", now - DECISION_TTL_MS);
    return { start: true };
  });
}

/** The function was resumed: its budget counts again from now, and its next crossing is a new one. */
export function resetBudget({ store }: Coordinator, now: number): void {
  store.set("budget_reset_at", now);
  store.set("budget_round", (store.get("budget_round") ?? 0) + 1);
}
