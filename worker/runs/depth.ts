import type { StoredEvent } from "../../sdk/event.ts";
import type { Env } from "../platform/env.ts";
import { maxEventDepth } from "../platform/guardSettings.ts";
import { createLogger } from "../platform/logger.ts";

// The runaway guard on chains of events (docs/production.md "Runaway guards"): every event a run
// sends (step.sendEvent, the events of its end) and every child it invokes carries the run's depth
// plus one, on the event itself (`StoredEvent.depth`, a field of its row in the event log), so a
// function that triggers itself stops at the limit instead of looping for ever.

/** A run's depth: the deepest of the events that started it (0 for an event from outside, a cron, an API call). */
export function runDepth(events: readonly StoredEvent[]): number {
  return events.reduce((deepest, event) => Math.max(deepest, event.depth ?? 0), 0);
}

/** The events as a handler sees them: without the engine's depth, which is not part of Inngest's event. */
export function withoutDepth(events: StoredEvent[]): StoredEvent[] {
  if (!events.some((event) => event.depth !== undefined)) return events;
  return events.map(({ depth: _depth, ...event }) => event);
}

/** Events sent by a run of depth `depth`: each one deeper. */
export function atDepth(events: StoredEvent[], depth: number): StoredEvent[] {
  return events.map((event) => ({ ...event, depth }));
}

/**
 * What a send or invoke that would go past the limit fails with: how long the chain is, who
 * caused it, and the setting that allows more.
 *
 * @example
 * chainTooDeepMessage({ depth: 33, limit: 32, functionId: "ping", runId: "01J…" });
 */
export function chainTooDeepMessage({ depth, limit, functionId, runId }: { depth: number; limit: number; functionId: string; runId: string }): string {
  return (
    `event chain too deep: this would be ${depth} events in a row, each sent by a run the one before started, ` +
    `caused by function ${JSON.stringify(functionId)} (run ${runId}); the limit is ${limit} (STEPFLARE_MAX_EVENT_DEPTH). ` +
    `A function that sends an event that triggers it again needs a condition to stop; raise STEPFLARE_MAX_EVENT_DEPTH only if the chain is meant to be this long`
  );
}

/** Why a run of depth `runDepthNow` may not send or invoke one level deeper, or null when it may. */
export function chainRefusal(env: Env, run: { id: string; functionId: string; events: readonly StoredEvent[] }): string | null {
  const depth = runDepth(run.events) + 1;
  const limit = maxEventDepth(env);
  return depth > limit ? chainTooDeepMessage({ depth, limit, functionId: run.functionId, runId: run.id }) : null;
}

/**
 * The events a run's end sends (failure, cancellation, finish), one level deeper than the run. They
 * may go one past the limit, so the failure the guard itself causes still reaches `onFailure`;
 * beyond that they are dropped, logged, so that a loop through them (a listener of
 * `inngest/function.finished` that fails, a listener of failures that finishes) stops too.
 */
export function endEventsWithinLimit(env: Env, run: { id: string; functionId: string; events: readonly StoredEvent[] }, events: StoredEvent[]): StoredEvent[] {
  if (events.length === 0) return events;
  const depth = runDepth(run.events) + 1;
  const limit = maxEventDepth(env);
  if (depth <= limit + 1) return atDepth(events, depth);
  createLogger({ run_id: run.id, function_id: run.functionId }).error("the events of this run's end were not sent: the event chain is too deep", {
    events: events.map((event) => event.name),
    reason: chainTooDeepMessage({ depth, limit, functionId: run.functionId, runId: run.id }),
  });
  return [];
}
