import type { SerializedError } from "../types.ts";
import { deserializeError, isSerializedShape } from "./serialize.ts";

/**
 * Thrown into the handler when a step has failed all of its attempts. Catch it to let the run go
 * on; left uncaught, it fails the run. As Inngest's, its `message` and `stack` are the step's last
 * error's and its `cause` is that error's cause, rebuilt; `error` is the error as stored.
 *
 * @example
 * try { await step.run("charge", charge); } catch (err) { if (err instanceof StepError) console.log(err.message, err.cause); }
 */
export class StepError extends Error {
  // Kept "StepError" (Inngest's takes the failed error's name): an uncaught one is known by it when
  // the run fails, as a final failure that the handler is not retried for.
  override readonly name = "StepError";
  /** The step's id, as written in the handler (with `:n` for repeats). */
  readonly stepId: string;
  /** The last error the step threw, as stored. */
  declare readonly error: SerializedError;

  constructor(stepId: string, error: SerializedError) {
    super(error.message);
    this.stepId = stepId;
    // Not enumerable: a failed run stores the StepError's own fields, and this one would repeat it all.
    Object.defineProperty(this, "error", { value: error, enumerable: false });
    if (error.stack) this.stack = error.stack;
    if (error.cause !== undefined) {
      Object.defineProperty(this, "cause", { value: isSerializedShape(error.cause) ? deserializeError(error.cause) : error.cause, enumerable: false, configurable: true, writable: true });
    }
  }
}
