import type { RunIndexEntry } from "../db/runs.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { allFunctions } from "../platform/registry.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import { startEventRuns } from "../runs/door.ts";

/**
 * Starts a run of every function `accepted` triggers (fan-out) and answers their index entries.
 * A RunObject's start() returns once the run is stored with its alarm armed, not when it ends.
 */
export async function dispatchEvent(env: Env, accepted: AcceptedEvent, position = 0): Promise<RunIndexEntry[]> {
  const logger = createLogger({ event_id: accepted.event.id });
  const targets = allFunctions().filter((fn) => fn.matches(accepted.event, logger));
  return startEventRuns(env, targets, accepted, position);
}
