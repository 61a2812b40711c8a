import type { IngestOptions } from "../ingest/ingest.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import { enqueueEvents } from "../queue/send.ts";
import { pausedFunctions } from "../db/pauses.ts";
import { dispatchAccepted } from "./events.ts";

// Dispatch from the request that accepted the events (`POST /e/:key`, the service binding): once
// they are in the event log, the request answers and dispatches them in the background, without the
// queue's hop. The queue stays the way for large requests, for a Worker already dispatching many,
// and for whatever fails here; what even the queue cannot take, the tick's sweep finds (its events
// have no dispatched mark).

/** A request of more events than this goes through the queue, whose consumer batches them. */
export const INLINE_MAX_EVENTS = 10;
/**
 * Dispatches one isolate runs from requests at once; past it, events queue. Few: under load the
 * queue's batches share their D1 work (a waits lookup and a write per batch, not per request), and
 * `npm run load` accepted 229 events/s with 4 against 120 with 16 (279 with none, all queued).
 */
export const INLINE_MAX_IN_FLIGHT = 4;

let inFlight = 0;

/** The dispatches this isolate runs from requests now. */
export function inlineDispatchesInFlight(): number {
  return inFlight;
}

/**
 * Starts the events' dispatch in the background (`waitUntil`), or answers false to leave them to
 * the queue: too many in the request, or too many dispatches already in flight here.
 *
 * @example
 * dispatchInline(env, accepted, (work) => ctx.waitUntil(work)) || (await enqueueEvents(env, accepted));
 */
export function dispatchInline(env: Env, accepted: AcceptedEvent[], waitUntil: (work: Promise<unknown>) => void): boolean {
  if (accepted.length > INLINE_MAX_EVENTS || inFlight >= INLINE_MAX_IN_FLIGHT) return false;
  if (accepted.length === 0) return true;
  inFlight++;
  waitUntil(dispatchNow(env, accepted).finally(() => inFlight--));
  return true;
}

/**
 * The ingest options of a request that dispatches its events itself. Made before the events are
 * written: it reads what dispatch will need (the paused functions, cached a second) beside that
 * write, off the way from event to first step.
 *
 * @example
 * const { ids } = await ingestEvents(env, events, dispatchFromRequest(env, (work) => ctx.waitUntil(work)));
 */
export function dispatchFromRequest(env: Env, waitUntil: ((work: Promise<unknown>) => void) | undefined): IngestOptions {
  // Called without a request to finish (a Hono app asked directly, in a test): the queue dispatches.
  if (!waitUntil) return {};
  void pausedFunctions(env).catch(() => undefined);
  return { dispatchNow: (accepted) => dispatchInline(env, accepted, waitUntil) };
}

async function dispatchNow(env: Env, accepted: AcceptedEvent[]): Promise<void> {
  let left = accepted;
  try {
    const { dispatched, writes, marks } = await dispatchAccepted(env, accepted);
    // Written before the queue is asked: an event dispatched here and not marked would be swept and started again (harmless, but paid for).
    await writes.writeThen(env, marks);
    left = accepted.filter((_, i) => !dispatched[i]);
  } catch (err) {
    createLogger().warn("dispatch from the request failed; the queue takes it", { events: accepted.length, error: String(err) });
  }
  if (left.length === 0) return;
  try {
    await enqueueEvents(env, left);
  } catch (err) {
    createLogger().error("could not queue events whose dispatch failed; the tick's sweep will find them", { events: left.length, error: String(err) });
  }
}
