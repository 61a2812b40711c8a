import type { SerializedError } from "../types.ts";

/**
 * The error `step.invoke` throws (as its StepError's `error`) when the invoked function did not
 * finish within the step's `timeout`. Named as Inngest's executor names it, so a handler here and an
 * app on the `inngest` SDK (which takes the name from the error its executor stored) read one name.
 *
 * @example
 * try { await step.invoke("child", { function: child, timeout: "1h" }); }
 * catch (err) { if (err instanceof StepError && err.error.name === "InngestInvokeTimeoutError") ... }
 */
export class InngestInvokeTimeoutError extends Error {
  override readonly name = "InngestInvokeTimeoutError";

  constructor(stepName: string) {
    super(`the invoked function did not finish within the timeout of step.invoke("${stepName}")`);
  }

  /** As it is stored and sent to an app: its name and message, no stack (no code of the run threw it). */
  toSerialized(): SerializedError {
    return { name: this.name, message: this.message };
  }
}
