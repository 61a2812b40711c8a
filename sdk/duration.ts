import parseDuration from "parse-duration";

/** A number of milliseconds, or text such as `"30s"`, `"1h30m"`, `"2 days"`, `"PT1H"`. */
export type DurationLike = number | string;

/**
 * Converts a duration to milliseconds; throws a clear error for text it cannot read.
 * parse-duration reads both the compact ("1h30m") and the long ("2 days") forms, and ISO 8601.
 *
 * @example
 * toMilliseconds("1h30m"); // 5_400_000
 */
export function toMilliseconds(duration: DurationLike): number {
  const ms = typeof duration === "number" ? duration : parseDuration(duration);
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`invalid duration ${JSON.stringify(duration)}: use a number of ms or text such as "30s", "1h30m", "2 days"`);
  }
  return Math.round(ms);
}

/**
 * Converts a `Date`, ISO string or epoch ms to epoch ms; throws for an invalid time.
 *
 * @example
 * toEpochMs("2026-12-01T09:00:00Z");
 */
export function toEpochMs(time: Date | string | number): number {
  const ms = time instanceof Date ? time.getTime() : typeof time === "number" ? time : Date.parse(time);
  if (!Number.isFinite(ms)) throw new TypeError(`invalid time ${JSON.stringify(time)}: use a Date, an ISO 8601 string or epoch ms`);
  return ms;
}
