import { AsyncLocalStorage } from "node:async_hooks";

/** The Durable Object whose code is running now, as far as a fault needs to know it. */
const currentObject = new AsyncLocalStorage<{ abort(reason: string): void }>();

/**
 * Runs `fn` as code of the object that `abort` resets, so a test's step can kill it (dev mode only;
 * outside it the RunObject never installs an aborter and `killCurrentRunObject` throws).
 */
export function runAsObject<T>(abort: (reason: string) => void, fn: () => T): T {
  return currentObject.run({ abort }, fn);
}

/**
 * For tests, in dev mode: resets the Durable Object the calling step runs in, as a runtime death
 * would (CPU or memory limit, a crash): nothing after the last commit survives, and the step never
 * stores an attempt.
 *
 * @example
 * await step.run("die", () => killCurrentRunObject());
 */
export function killCurrentRunObject(): never {
  const object = currentObject.getStore();
  if (!object) throw new Error("killCurrentRunObject: not inside a run's step in dev mode");
  object.abort("killed on purpose by a test step");
  throw new Error("unreachable: the object was reset");
}
