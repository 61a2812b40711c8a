import { engineEventId, type StoredEvent } from "../../sdk/event.ts";
import { BUDGET_EXCEEDED_EVENT } from "../../sdk/flow.ts";
import type { StepflareFunction } from "../../sdk/function.ts";
import { getEvent } from "../db/events.ts";
import { insertPause, pausedFunctions } from "../db/pauses.ts";
import { spendSince } from "../db/runs.ts";
import { ingestEvents } from "../ingest/ingest.ts";
import type { Env } from "../platform/env.ts";
import { dailyBudget } from "../platform/guardSettings.ts";
import { createLogger } from "../platform/logger.ts";
import { allFunctions } from "../platform/registry.ts";

// The account's daily budget (`STEPFLARE_BUDGET_DAILY`, docs/production.md "Runaway guards"),
// checked by the tick each minute: once the runs started in the last 24 hours cost more (their
// estimated cost, written with each run's end), every function is paused and
// `stepflare/function.budget_exceeded` (scope "account") is sent, at most once a UTC day.

const DAY_MS = 86_400_000;

/** What a check found: the day's spend, and whether this check paused the functions. */
export interface AccountBudgetCheck {
  spentUsd: number;
  budgetUsd: number;
  paused: boolean;
}

/**
 * Sums the last 24 hours' spend and, past the budget, pauses `functions` (every registered one)
 * and sends the day's event. At most once a UTC day: the event's id names the day, and a day whose
 * event is in the log was handled already, so an operator who resumes is not overruled until the next day.
 * Without `STEPFLARE_BUDGET_DAILY` it reads nothing.
 *
 * @example
 * await checkAccountBudget(env, Date.now());
 */
export async function checkAccountBudget(env: Env, now: number, functions: readonly StepflareFunction[] = allFunctions()): Promise<AccountBudgetCheck | null> {
  const budgetUsd = dailyBudget(env);
  if (budgetUsd === null) return null;
  const day = Math.floor(now / DAY_MS) * DAY_MS;
  const spentUsd = await spendSince(env, now - DAY_MS);
  if (spentUsd <= budgetUsd) return { spentUsd, budgetUsd, paused: false };
  const eventId = engineEventId("budget", "account", String(day));
  if (await getEvent(env, eventId)) return { spentUsd, budgetUsd, paused: false };
  const reason = `account budget: $${spentUsd.toFixed(6)} spent in the last 24 hours, over STEPFLARE_BUDGET_DAILY ($${budgetUsd}); resume each function to start the events held meanwhile`;
  const paused = await pausedFunctions(env, true);
  for (const fn of functions) if (!paused.has(fn.id)) await insertPause(env, fn.id, false, now, reason);
  const event: StoredEvent = {
    id: eventId,
    name: BUDGET_EXCEEDED_EVENT,
    data: { scope: "account", budget_usd: budgetUsd, spent_usd: spentUsd, day: new Date(day).toISOString(), functions: functions.map((fn) => fn.id), reason },
    ts: now,
  };
  // After the pauses: a tick that fails between them pauses again, and sends the event then.
  await ingestEvents(env, [event]);
  createLogger().warn("every function paused: the account's daily budget is spent", { spent_usd: spentUsd, budget_usd: budgetUsd });
  return { spentUsd, budgetUsd, paused: true };
}
