import { DurableObject } from "cloudflare:workers";
import { instrument } from "../platform/bindings.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { tick, TICK_MS } from "./tick.ts";
import { setAlarm, usage } from "../platform/usage.ts";

/**
 * How soon a tick runs again when it failed (D1 down) or died with the process: well within the
 * minute, so a schedule due at that tick still starts for its own time, not a minute later as the
 * latest missed one (which would skip it).
 */
export const TICK_RETRY_MS = 10_000;

/**
 * The one object that keeps the tick going (DESIGN "Cron and the tick"): a durable alarm every
 * minute (and at the next cron's time) that survives restarts, so crons fire and the sweep runs
 * under `wrangler dev` too, where cron triggers don't.
 */
export class Scheduler extends DurableObject<Env> {
  /** Whether a tick of this object's life went through (its first one sweeps again, see TickOptions). */
  private ticked = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, instrument(env));
  }

  /**
   * Arms the tick if it is not armed (idempotent; called once per isolate). The first tick runs at
   * once: a fresh deployment stores its crons now, so each fires at its first time rather than
   * being picked up by a tick a minute later.
   */
  async ensureTicking(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await setAlarm(this.ctx.storage, Date.now());
  }

  override async alarm(): Promise<void> {
    // An alarm reaches the object from the runtime, not through a stub the bindings wrapper counts.
    usage.doRequests++;
    // Re-arm first, and soon: a tick that fails or is cut by a crash must not stop the next one,
    // nor push a due schedule past its minute.
    await setAlarm(this.ctx.storage, Date.now() + TICK_RETRY_MS);
    let nextCronAt: number | null;
    try {
      ({ nextCronAt } = await tick(this.env, Date.now(), { sweepAgain: !this.ticked }));
      this.ticked = true;
    } catch (err) {
      createLogger().error("tick failed; trying again soon", { error: String(err), retry_in_ms: TICK_RETRY_MS });
      return;
    }
    // Crons fire at their minute, not up to a tick later.
    const next = Date.now() + TICK_MS;
    await setAlarm(this.ctx.storage, nextCronAt !== null && nextCronAt < next ? Math.max(nextCronAt, Date.now()) : next);
  }
}
