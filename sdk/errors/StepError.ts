import type { SerializedError } from "../types.ts";

/**
 * Thrown into the handler when a step has failed all of its attempts.
 * Catch it to let the run go on; left uncaught, it fails the run.
 *
 * @example
 * try { await step.run("charge", charge); } catch (err) { if (err instanceof StepError) ... }
 */
export class StepError extends Error {
  override readonly name = "StepError";
  /** The step's id, as written in the handler (with `:n` for repeats). */
  readonly stepId: string;
  /** The last error the step threw, as stored. */
  readonly error: SerializedError;

  constructor(stepId: string, error: SerializedError) {
    super(`step "${stepId}" failed: ${error.name}: ${error.message}`);
    this.stepId = stepId;
    this.error = error;
  }
}
