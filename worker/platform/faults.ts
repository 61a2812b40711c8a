import { StepflareError } from "./errors.ts";
import { AsyncLocalStorage } from "node:async_hooks";
import { z } from "zod";

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

/** Which bindings are down: while one is on (dev mode only), every call to that binding fails. */
export const faultSwitchSchema = z.object({ d1: z.boolean(), queue: z.boolean() }).strict();
export type FaultSwitch = z.infer<typeof faultSwitchSchema>;

/**
 * The fault switch, for outage tests and `npm run chaos` (dev mode only: the bindings wrapper in
 * worker/platform/bindings.ts ignores it elsewhere). One per isolate: under `wrangler dev` and in the
 * workerd tests the Worker, its consumer and every Durable Object share it, and a test can flip it
 * directly or through `POST /v1/dev/faults`.
 *
 * @example
 * faults.d1 = true; // D1 is down until set back to false
 */
export const faults: FaultSwitch = { d1: false, queue: false };

/** Turns the named switches on or off and answers the whole switch. */
export function setFaults(change: Partial<FaultSwitch>): FaultSwitch {
  if (change.d1 !== undefined) faults.d1 = change.d1;
  if (change.queue !== undefined) faults.queue = change.queue;
  return { ...faults };
}

const BINDING_NAMES: Record<keyof FaultSwitch, string> = { d1: "D1", queue: "Queue" };

/** A call that failed because its binding's fault switch is on. */
export class InjectedFaultError extends StepflareError {
  override name = "InjectedFaultError";
  constructor(readonly binding: keyof FaultSwitch) {
    super("binding.fault_injected", `${BINDING_NAMES[binding]} is down (fault injected in dev mode): POST /v1/dev/faults {"${binding}": false} brings it back`);
  }
}

/** Throws InjectedFaultError when `binding` is switched off and the env is in dev mode. */
export function checkFault(binding: keyof FaultSwitch, isDev: boolean): void {
  if (isDev && faults[binding]) throw new InjectedFaultError(binding);
}
