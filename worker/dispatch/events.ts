import { markDispatched } from "../db/events.ts";
import type { RunIndexEntry } from "../db/runs.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { allFunctions } from "../platform/registry.ts";
import type { AcceptedEvent, EventRef } from "../platform/types.ts";
import { hasRemoteCopy, loadRemoteFunctions } from "../remote/apps.ts";
import { ShardWrites } from "../db/shards.ts";
import { starterIndexWrites, startEventRuns } from "../runs/door.ts";
import { deliverMatches, findMatchingWaits } from "../runs/waits.ts";

/**
 * Starts a run of every function `accepted` triggers (fan-out) and answers their index entries.
 * A RunObject's start() returns once the run is stored with its alarm armed, not when it ends.
 */
export async function dispatchEvent(env: Env, accepted: AcceptedEvent, position = 0): Promise<RunIndexEntry[]> {
  const logger = createLogger({ event_id: accepted.event.id });
  const targets = allFunctions().filter((fn) => fn.matches(accepted.event, logger));
  return startEventRuns(env, targets, accepted, position);
}

/** What dispatching events came to: which of them were dispatched, and the D1 statements that record it. */
export interface DispatchOutcome {
  /** Per event, in order: its runs are started and every wait it resolves was told. The others must be dispatched again. */
  dispatched: boolean[];
  /** Skipped runs' index rows and the waits it used up: one D1 batch per shard. */
  writes: ShardWrites;
  /** The events' dispatched marks, written once `writes` went through: a marked event is never swept again. */
  marks: ShardWrites;
}

/**
 * Dispatches events in one pass (a queue batch's, or a request's): runs start while D1 looks the
 * events up in the waits index, then each wait found is told. An event's place in the list (after
 * `firstPosition`, for a list that goes on from another pass's) orders a debounce's or batch's
 * events. `stage` hears where the pass is (a batch that runs out of time logs it).
 *
 * @example
 * const { dispatched, writes, marks } = await dispatchAccepted(env, [{ event, receivedAt }]);
 */
export async function dispatchAccepted(env: Env, events: AcceptedEvent[], stage: (name: string) => void = () => {}, firstPosition = 0): Promise<DispatchOutcome> {
  if (events.length === 0) return { dispatched: [], writes: new ShardWrites(), marks: new ShardWrites() };
  // The synced apps' functions. With a copy of them the pass does not wait for a fresher one (that
  // read goes on beside it: a D1 read awaited in every consumer batch stalled the local queue under
  // load in the workerd tests). An isolate with no copy reads one first, and if it cannot, dispatches
  // no event now: marked dispatched, an event of theirs would never start its runs.
  if (hasRemoteCopy()) void loadRemoteFunctions(env);
  else if (!(await loadRemoteFunctions(env))) return { dispatched: events.map(() => false), writes: new ShardWrites(), marks: new ShardWrites() };
  const now = Date.now();
  stage("dispatch");
  // The waits an event resolves are told as soon as they are found, not once the runs it starts have
  // answered (a start waits for its run's first invocation: runs/runStart.ts).
  const [runs, waits] = await Promise.all([
    Promise.all(
      events.map((accepted, position) =>
        dispatchEvent(env, accepted, firstPosition + position).catch((err: unknown) => {
          createLogger({ event_id: accepted.event.id }).error("dispatch failed; will retry", { error: String(err) });
          return null;
        }),
      ),
    ),
    findMatchingWaits(env, events, now).then(
      (matches) => deliverMatches(env, matches),
      (err: unknown) => {
        createLogger().error("waits lookup failed; the events will be dispatched again", { error: String(err) });
        return null;
      },
    ),
  ]);
  stage("index writes");
  const { deletes, failed } = waits ?? { deletes: new ShardWrites(), failed: [] };
  const undelivered = new Set(failed.map((match) => refKey({ id: match.accepted.event.id, receivedAt: match.accepted.receivedAt })));
  const started: RunIndexEntry[] = [];
  const refs: EventRef[] = [];
  const dispatched = events.map((accepted, i) => {
    const ref = { id: accepted.event.id, receivedAt: accepted.receivedAt };
    const eventRuns = runs[i];
    if (!eventRuns || waits === null || undelivered.has(refKey(ref))) return false;
    started.push(...eventRuns);
    refs.push(ref);
    return true;
  });
  return { dispatched, writes: starterIndexWrites(env, started).addAll(deletes), marks: await markDispatched(env, refs, now) };
}

/** One event's key in a map: its id alone may name several events. */
export function refKey({ id, receivedAt }: EventRef): string {
  return `${receivedAt}\n${id}`;
}
