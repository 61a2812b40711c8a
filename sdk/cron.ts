import { Cron } from "croner";

/** Inngest's time-zone prefix: `TZ=Europe/Paris 0 9 * * 1`. */
const TZ_PREFIX = /^(?:TZ|CRON_TZ)=(\S+)\s+(.+)$/;

/** A parsed cron trigger: when it fires, in its time zone. */
export interface CronSchedule {
  /** The trigger as the function wrote it (its identity: the `crons` row and the runs' event). */
  source: string;
  /** The five-field pattern or nickname (`@daily`), without the time zone. */
  pattern: string;
  /** IANA time zone; UTC when none is given. */
  timezone: string;
  /** The first scheduled time strictly after `time` (epoch ms), or null if there is none. */
  nextAfter(time: number): number | null;
  /** The last scheduled time at or before `time`, or null if there is none. */
  lastAtOrBefore(time: number): number | null;
}

/**
 * Parses a cron trigger: five fields (minute to day of week) or a nickname such as `@daily`,
 * with Inngest's optional `TZ=<zone> ` prefix. Throws a TypeError naming `owner` for a pattern or
 * time zone the cron library (croner) refuses.
 *
 * @example
 * parseCron("TZ=Europe/Paris 0 9 * * 1", 'function "weekly-report"').nextAfter(Date.now());
 */
export function parseCron(source: string, owner: string): CronSchedule {
  const text = source.trim();
  const zoned = TZ_PREFIX.exec(text);
  const timezone = zoned?.[1] ?? "UTC";
  const pattern = (zoned?.[2] ?? text).trim();
  const fail = (reason: string): never => {
    throw new TypeError(`${owner}: invalid cron ${JSON.stringify(source)}: ${reason}`);
  };
  if (!pattern.startsWith("@") && pattern.split(/\s+/).length !== 5) fail("use five fields (minute hour day-of-month month day-of-week) or a nickname such as @daily");
  let cron: Cron;
  try {
    cron = new Cron(pattern, { timezone, paused: true });
    // An unknown time zone is found only when a time is computed.
    cron.nextRun(new Date(0));
  } catch (err) {
    return fail(err instanceof Error ? err.message.split("\n")[0]! : String(err));
  }
  return {
    source,
    pattern,
    timezone,
    nextAfter: (time) => cron.nextRun(new Date(time))?.getTime() ?? null,
    lastAtOrBefore: (time) => cron.previousRuns(1, new Date(time + 1))[0]?.getTime() ?? null,
  };
}
