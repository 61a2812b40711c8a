import type { FlowControl, Throttle } from "../../sdk/flow.ts";
import type { StepflareFunction } from "../../sdk/function.ts";
import { flowObject } from "../flow/admission.ts";
import { LEASE_MS, type ThrottleRate } from "../flow/FlowObject.ts";
import type { Env } from "../platform/env.ts";
import type { RunRecord } from "./RunStore.ts";

// A run's side of flow control that the run asks for itself: its start under a throttle, and its
// slot of each concurrency limit while an invocation runs (DESIGN "Flow control").

export { LEASE_MS };

/** A run's place in a flow coordinator's queue: the time it was created, less its priority in seconds. */
function queueOrder(run: RunRecord, fn: StepflareFunction): number {
  return run.startedAt - (fn.flow.priorityOf?.(run.events[0]!) ?? 0) * 1000;
}

function throttleRate(throttle: Throttle): ThrottleRate {
  return { limit: throttle.limit, period: throttle.period, burst: throttle.limit + (throttle.burst ?? 0) };
}

/** The slots and throttle turn of one run (a RunObject has one). */
export class RunSlots {
  /** When a concurrency coordinator last gave this run its slot (in memory: after a restart the run asks again). */
  private grantedAt: number | undefined;

  constructor(private readonly env: Env) {}

  /** A concurrency coordinator just stored this run's lease and said so. */
  granted(): void {
    this.grantedAt = Date.now();
  }

  /** Asks the function's throttle for this run's start: granted, or when to expect it. */
  acquireStart(run: RunRecord, fn: StepflareFunction, throttle: NonNullable<FlowControl["throttle"]>) {
    const coordinator = flowObject(this.env, fn.id, "throttle", throttle.keyOf(run.events[0]!));
    return coordinator.acquireStart(run.id, throttleRate(throttle), queueOrder(run, fn));
  }

  /**
   * Takes a slot of each of the function's concurrency limits (a second ask renews it), or none:
   * a run short of one gives back the others and waits in that limit's queue, in order of its
   * start less its priority.
   */
  async acquire(run: RunRecord, fn: StepflareFunction): Promise<boolean> {
    const limits = fn.flow.concurrency ?? [];
    // The one limit's coordinator just stored this run's lease and said so: no need to ask it again.
    const grantedAt = this.grantedAt;
    this.grantedAt = undefined;
    if (limits.length === 1 && grantedAt !== undefined && Date.now() - grantedAt < LEASE_MS / 3) return true;
    const orderKey = queueOrder(run, fn);
    for (const [i, limit] of limits.entries()) {
      if (await this.slotOf(run, fn, i).acquire(run.id, limit.limit, orderKey)) continue;
      await Promise.all(limits.map((_, j) => (j === i ? undefined : this.slotOf(run, fn, j).releaseSlot(run.id))));
      return false;
    }
    return true;
  }

  /**
   * Gives back everything the run holds in its coordinators, once it has ended: its slot of each
   * concurrency limit, its place in their queues and in its throttle's; the coordinators hand
   * what it held to the runs waiting next at once.
   */
  withdraw(run: RunRecord, fn: StepflareFunction): Promise<unknown> {
    const throttle = fn.flow.throttle;
    const started = run.starts.length > 0;
    return Promise.all([
      ...(fn.flow.concurrency ?? []).map((_, i) => this.slotOf(run, fn, i).withdraw(run.id, started)),
      ...(throttle ? [flowObject(this.env, fn.id, "throttle", throttle.keyOf(run.events[0]!)).withdraw(run.id, started)] : []),
    ]);
  }

  /** Gives back this run's slot of each concurrency limit. */
  release(run: RunRecord, fn: StepflareFunction): Promise<unknown> {
    return Promise.all((fn.flow.concurrency ?? []).map((_, i) => this.slotOf(run, fn, i).releaseSlot(run.id)));
  }

  private slotOf(run: RunRecord, fn: StepflareFunction, index: number) {
    return flowObject(this.env, fn.id, `concurrency:${index}`, fn.flow.concurrency![index]!.keyOf(run.events[0]!));
  }
}
