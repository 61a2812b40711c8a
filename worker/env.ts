import type { RunObject } from "./objects/RunObject.ts";
import type { Scheduler } from "./objects/Scheduler.ts";
import type { QueueMessage } from "./messages.ts";

/** The bindings `wrangler.toml` declares. */
export interface Env {
  DB: D1Database;
  EVENTS: Queue<QueueMessage>;
  RUNS: DurableObjectNamespace<RunObject>;
  SCHEDULER: DurableObjectNamespace<Scheduler>;
  /** "1" under `wrangler dev`: any event key works and the API is open. */
  STEPFLARE_DEV?: string;
  /** Secret: the event keys `POST /e/:key` accepts outside dev mode, comma-separated. */
  STEPFLARE_EVENT_KEYS?: string;
  /** Secret: the bearer token the REST API needs outside dev mode. */
  STEPFLARE_SIGNING_KEY?: string;
  /** Days events, runs index rows and finished runs are kept (default 30). */
  STEPFLARE_RETENTION_DAYS?: string;
}
