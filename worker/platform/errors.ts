// The engine's errors: one base with a stable code (as Cloudflare's workflows-shared and Restate
// do), so callers match a code, not prose. routes/errors.ts maps each code to its HTTP status, the
// one place that does. The SDK's user-facing errors (NonRetriableError, StepError, …) are apart.

/** Every code a StepflareError may carry. */
export const ERROR_CODES = [
  /** An event (or a request of events) that fails validation. */
  "event.invalid",
  /** An event, or a request of events, over a limit. */
  "event.too_large",
  /** No function has the id. */
  "function.not_found",
  /** No run has the id. */
  "run.not_found",
  /** The function is paused: it starts no run until it is resumed. */
  "function.paused",
  /** A request whose values cannot be acted on (a cancellation's range, a rerun's step). */
  "request.invalid",
  /** What an app's SDK sent to register its functions is not a valid sync. */
  "app.sync_invalid",
  /** Syncing an app failed on the app's side (unreachable, an error, a bad answer). */
  "app.sync_failed",
  /** A binding is switched off by dev mode's fault injection. */
  "binding.fault_injected",
  /** A secret or setting of the Worker is in a form it cannot use (a signing key that is not hex). */
  "config.invalid",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * An error of the engine, with a stable `code` and a message that says what happened and what to
 * do; `path` names the part of a request at fault, when there is one.
 *
 * @example
 * throw new StepflareError("run.not_found", `no run with id "${runId}"`);
 */
export class StepflareError extends Error {
  override name = "StepflareError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}
