import { engineEventId, type StoredEvent } from "../../sdk/event.ts";
import { BUDGET_EXCEEDED_EVENT } from "../../sdk/flow.ts";
import type { StepflareFunction } from "../../sdk/function.ts";
import { insertPause } from "../db/pauses.ts";
import { ingestEvents } from "../ingest/ingest.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { flowObject } from "./admission.ts";
import type { BudgetAnswer } from "./budget.ts";

// A function's budget at a run's start (docs/flow-control.md "Budgets"): the run counts against it,
// or the budget is spent and the function is paused, through the same pause an operator makes,
// with its reason, and `stepflare/function.budget_exceeded` is sent once per crossing.

/**
 * Counts a run of `fn` (which has a budget) and answers true, or pauses `fn` and answers false:
 * the caller then holds the run's event for the resume (or refuses a direct start).
 *
 * @example
 * if (fn.flow.budget && !(await admitByBudget(env, fn, runId))) return "none";
 */
export async function admitByBudget(env: Env, fn: StepflareFunction, runId: string, now = Date.now()): Promise<boolean> {
  const budget = fn.flow.budget!;
  const ask = { runId, periodMs: budget.periodMs, ...(budget.runs !== undefined ? { runs: budget.runs } : {}), ...(budget.steps !== undefined ? { steps: budget.steps } : {}) };
  const answer = await flowObject(env, fn.id, "budget", "").budget(fn.id, ask, now);
  if (answer.start) return true;
  await pauseForBudget(env, fn, answer, now);
  return false;
}

/** Pauses the function, then sends the event (its id names the crossing, so a retry sends it no second time). */
async function pauseForBudget(env: Env, fn: StepflareFunction, spent: Extract<BudgetAnswer, { start: false }>, now: number): Promise<void> {
  const budget = fn.flow.budget!;
  const since = new Date(spent.since).toISOString();
  const limits = [budget.runs !== undefined ? `${budget.runs} runs` : null, budget.steps !== undefined ? `${budget.steps} steps` : null].filter(Boolean).join(" or ");
  const reason = `budget: ${limits} per ${budget.period} reached (${spent.used.runs} runs started${budget.steps !== undefined ? `, ${spent.used.steps} steps taken` : ""} since ${since}); resume to start the events held meanwhile`;
  await insertPause(env, fn.id, false, now, reason);
  const event: StoredEvent = {
    // Once per crossing: the function stays paused until a resume, which begins the next round.
    id: engineEventId("budget", fn.id, String(spent.round)),
    name: BUDGET_EXCEEDED_EVENT,
    data: { scope: "function", function_id: fn.id, budget: { runs: budget.runs ?? null, steps: budget.steps ?? null, period: budget.period }, used: spent.used, since, reason },
    ts: now,
  };
  await ingestEvents(env, [event]);
  createLogger({ function_id: fn.id }).warn("function paused: its budget is spent", { reason });
}
