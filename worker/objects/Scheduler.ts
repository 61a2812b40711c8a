import { DurableObject } from "cloudflare:workers";
import { instrument } from "../bindings.ts";
import type { Env } from "../env.ts";
import { tick, TICK_MS } from "../scheduled.ts";
import { usage } from "../usage.ts";

/**
 * The one object that keeps the tick going (DESIGN "Cron and the tick"): a durable alarm every
 * minute (and at the next cron's time) that survives restarts, so crons fire and the sweep runs
 * under `wrangler dev` too, where cron triggers don't.
 */
export class Scheduler extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, instrument(env));
  }

  /** Arms the tick if it is not armed (idempotent; called once per isolate). */
  async ensureTicking(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + TICK_MS);
  }

  override async alarm(): Promise<void> {
    // An alarm reaches the object from the runtime, not through a stub the bindings wrapper counts.
    usage.doRequests++;
    // Re-arm first: a failing tick must not stop the next one.
    await this.ctx.storage.setAlarm(Date.now() + TICK_MS);
    const { nextCronAt } = await tick(this.env);
    // Crons fire at their minute, not up to a tick later.
    if (nextCronAt !== null && nextCronAt < Date.now() + TICK_MS) await this.ctx.storage.setAlarm(Math.max(nextCronAt, Date.now()));
  }
}
