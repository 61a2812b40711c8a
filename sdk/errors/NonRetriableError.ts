/**
 * Throw from a step or handler to fail at once, without further retries.
 *
 * @example
 * throw new NonRetriableError("user not found", { cause: err });
 */
export class NonRetriableError extends Error {
  override readonly name = "NonRetriableError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
