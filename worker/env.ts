import type { RunObject } from "./objects/RunObject.ts";
import type { Scheduler } from "./objects/Scheduler.ts";
import type { QueueMessage } from "./messages.ts";

/** The bindings `wrangler.toml` declares. */
export interface Env {
  DB: D1Database;
  EVENTS: Queue<QueueMessage>;
  RUNS: DurableObjectNamespace<RunObject>;
  SCHEDULER: DurableObjectNamespace<Scheduler>;
  /** "1" under `wrangler dev`: any event key works. */
  STEPFLARE_DEV?: string;
}
