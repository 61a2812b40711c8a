import { toMilliseconds, type DurationLike } from "../duration.ts";

/**
 * Throw from a step or handler to retry no sooner than `retryAfter`
 * (a duration such as `"30s"` or a number of ms, or a `Date`).
 *
 * @example
 * throw new RetryAfterError("rate limited", "1m");
 */
export class RetryAfterError extends Error {
  override readonly name = "RetryAfterError";
  /** Milliseconds to wait from the moment of the failure, or an absolute time. */
  readonly retryAfter: number | Date;

  constructor(message: string, retryAfter: DurationLike | Date, options?: { cause?: unknown }) {
    super(message, options);
    this.retryAfter = retryAfter instanceof Date ? retryAfter : toMilliseconds(retryAfter);
  }

  /** The epoch ms of the next attempt, given the time of the failure. */
  retryAt(now: number): number {
    return this.retryAfter instanceof Date ? this.retryAfter.getTime() : now + this.retryAfter;
  }
}
