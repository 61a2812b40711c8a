/**
 * A step body, or the handler's own code between steps, that ran past the function's
 * `stepTimeout`. Retried like any other error.
 *
 * @example
 * app.createFunction({ id: "slow", stepTimeout: "30s" }, { event: "x" }, handler);
 */
export class StepTimeoutError extends Error {
  override readonly name = "StepTimeoutError";
}
