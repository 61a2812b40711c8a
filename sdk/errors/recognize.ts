import { NonRetriableError } from "./NonRetriableError.ts";
import { RetryAfterError } from "./RetryAfterError.ts";
import { StepError } from "./StepError.ts";

// Errors are recognised by name and shape, not only by class: one thrown by a leftover
// `import { NonRetriableError } from "inngest"` (another class of the same name) behaves as ours.

/** True for our NonRetriableError or any Error named "NonRetriableError" (Inngest's included). */
export function isNonRetriable(err: unknown): boolean {
  return err instanceof NonRetriableError || (err instanceof Error && err.name === "NonRetriableError");
}

/** True for our StepError, or an Error named "StepError" (a step's failure rethrown). */
export function isStepError(err: unknown): boolean {
  return err instanceof StepError || (err instanceof Error && err.name === "StepError");
}

/**
 * When a RetryAfterError asks to be retried, given the time of the failure; undefined for other
 * errors. Inngest's keeps `retryAfter` as text: whole seconds ("30") or an ISO 8601 time.
 *
 * @example
 * retryAfterOf(new RetryAfterError("busy", "30s"), 0); // 30_000
 */
export function retryAfterOf(err: unknown, now: number): number | undefined {
  if (err instanceof RetryAfterError) return err.retryAt(now);
  if (!(err instanceof Error) || err.name !== "RetryAfterError") return undefined;
  const retryAfter = (err as { retryAfter?: unknown }).retryAfter;
  if (retryAfter instanceof Date) return retryAfter.getTime();
  if (typeof retryAfter === "number" && Number.isFinite(retryAfter)) return now + retryAfter;
  if (typeof retryAfter !== "string") return undefined;
  if (/^\d+$/.test(retryAfter)) return now + Number(retryAfter) * 1000;
  const at = Date.parse(retryAfter);
  return Number.isNaN(at) ? undefined : at;
}
