import { z } from "zod";
import { readSetting, type Env } from "./env.ts";

// The runaway guards' settings (docs/production.md "Runaway guards"), read from the environment
// with zod (readSetting: a bad value keeps the default, with a warning in the log once per isolate).

/** Events in a row a chain of runs may send when `STEPFLARE_MAX_EVENT_DEPTH` is unset. */
export const DEFAULT_MAX_EVENT_DEPTH = 32;

const depthSchema = z.string().trim().regex(/^[0-9]+$/, "must be a whole number").transform(Number).pipe(z.number().int().min(1, "must be at least 1").max(10_000, "must be at most 10000"));
const dollarsSchema = z.string().trim().regex(/^[0-9]+(\.[0-9]+)?$/, "must be a number of dollars, such as 25 or 0.50").transform(Number).pipe(z.number().positive("must be more than 0"));

/**
 * How many events in a row a chain of runs may send (`STEPFLARE_MAX_EVENT_DEPTH`, default 32).
 *
 * @example
 * maxEventDepth({ STEPFLARE_MAX_EVENT_DEPTH: "8" }); // 8
 */
export function maxEventDepth(env: Pick<Env, "STEPFLARE_MAX_EVENT_DEPTH">): number {
  return readSetting("STEPFLARE_MAX_EVENT_DEPTH", env.STEPFLARE_MAX_EVENT_DEPTH, depthSchema, DEFAULT_MAX_EVENT_DEPTH, `keeping ${DEFAULT_MAX_EVENT_DEPTH}`);
}

/**
 * The account's daily budget in dollars at list price (`STEPFLARE_BUDGET_DAILY`), or null: none.
 *
 * @example
 * dailyBudget({ STEPFLARE_BUDGET_DAILY: "25" }); // 25
 */
export function dailyBudget(env: Pick<Env, "STEPFLARE_BUDGET_DAILY">): number | null {
  return readSetting<number | null>("STEPFLARE_BUDGET_DAILY", env.STEPFLARE_BUDGET_DAILY, dollarsSchema, null, "no daily budget is enforced");
}
