import type { Env } from "./env.ts";
import { createLogger } from "./logger.ts";

const DEFAULT_RETENTION_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * How long events, runs index rows and finished runs are kept: `STEPFLARE_RETENTION_DAYS` days
 * (a positive integer; default 30). A value that is not one is ignored, with a warning.
 *
 * @example
 * retentionMs({ STEPFLARE_RETENTION_DAYS: "7" } as Env); // 604_800_000
 */
export function retentionMs(env: Pick<Env, "STEPFLARE_RETENTION_DAYS">): number {
  const text = env.STEPFLARE_RETENTION_DAYS;
  if (text === undefined || text === "") return DEFAULT_RETENTION_DAYS * DAY_MS;
  const days = Number(text);
  if (Number.isInteger(days) && days > 0) return days * DAY_MS;
  warnOnce(`STEPFLARE_RETENTION_DAYS=${JSON.stringify(text)} is not a positive whole number of days; keeping data ${DEFAULT_RETENTION_DAYS} days`);
  return DEFAULT_RETENTION_DAYS * DAY_MS;
}

let warned = false;
function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  createLogger().warn(message);
}
