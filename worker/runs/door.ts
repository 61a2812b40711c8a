import type { StepflareFunction } from "../../sdk/function.ts";
import { pausedFunctions, recordPausedEvent } from "../db/pauses.ts";
import { insertRunStatement, type RunIndexEntry } from "../db/runs.ts";
import { runIdScheme, type RunIdScheme } from "../db/runIdScheme.ts";
import { shardFor, ShardWrites } from "../db/shards.ts";
import { admitRun } from "../flow/admission.ts";
import { admitByBudget } from "../flow/budgetAdmission.ts";
import type { Env } from "../platform/env.ts";
import { StepflareError } from "../platform/errors.ts";
import { allFunctions, findFunction } from "../platform/registry.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import type { RunInit } from "./RunObject.ts";

// The one door into a run (DESIGN "Every way in passes one door"): the only module that looks a
// run's object up, and the way every run starts: an event (with its function's pause and flow
// control), a cron, an invoke, a rerun, a resume, a debounce or a batch, the service binding.

/** The object of run `runId` (its record of truth). */
export function runObject(env: Env, runId: string) {
  return env.RUNS.get(env.RUNS.idFromName(runId));
}

/**
 * The ids of the runs an event started that the runs index may not list yet (a run writes its own
 * row once it is worth one, or with its end): one per registered function the event triggers.
 */
export function unlistedRunIds(accepted: AcceptedEvent, listed: ReadonlySet<string>, idFor: RunIdScheme): string[] {
  return allFunctions()
    .filter((fn) => fn.matches(accepted.event))
    .map((fn) => idFor(fn.id, accepted.event.id, accepted.receivedAt))
    .filter((runId) => !listed.has(runId));
}

/** What a run starts with: its object's start, and when the runs index says it started (an event's receipt for an event's run, else now). */
export interface RunStart extends RunInit {
  startedAt: number;
}

/** A paused function is asked to start a run directly (a cron, an invoke, a trigger, a rerun). */
export class FunctionPausedError extends StepflareError {
  override name = "FunctionPausedError";
  constructor(functionId: string) {
    super("function.paused", `function ${JSON.stringify(functionId)} is paused: it starts no run until it is resumed (POST /v1/functions/:id/resume)`);
  }
}

/**
 * Starts a run not triggered by an event (a cron, an invoke, a manual trigger, a rerun), or throws
 * FunctionPausedError if its function is paused (or its budget, now spent, pauses it): such a
 * start has no event to hold for the resume.
 */
export async function startDirectRun(env: Env, start: RunStart): Promise<RunIndexEntry> {
  if ((await pausedFunctions(env)).has(start.functionId)) throw new FunctionPausedError(start.functionId);
  const fn = findFunction(start.functionId);
  if (fn?.flow.budget && !(await admitByBudget(env, fn, start.runId))) throw new FunctionPausedError(start.functionId);
  return startRun(env, start);
}

/** Starts a run in its object (a repeated start changes nothing) and answers its runs index entry; the object writes that row itself. */
async function startRun(env: Env, { startedAt, ...init }: RunStart): Promise<RunIndexEntry> {
  const status = await runObject(env, init.runId).start({ ...init, receivedAt: init.receivedAt ?? startedAt, listedAt: startedAt });
  return { runId: init.runId, functionId: init.functionId, eventId: init.events[0]!.id, status, startedAt, ...(init.parent ? { parentRunId: init.parent.runId } : {}) };
}

/**
 * The runs index rows a run's starter writes, in its own D1 batch: only a skipped run's, which has
 * no object. A started run's object writes its own row, once the run is worth one (it waits,
 * queues or runs a while) or with its end: a short run's row is one write (runs/delivery.ts).
 */
export function starterIndexWrites(env: Env, entries: RunIndexEntry[]): ShardWrites {
  const writes = new ShardWrites();
  for (const entry of entries.filter((e) => e.status === "Skipped")) writes.add(shardFor(env, entry.runId), insertRunStatement(shardFor(env, entry.runId), entry));
  return writes;
}

/**
 * Starts the runs of the functions `accepted` triggers (fan-out): a paused function's event waits
 * for its resume; the others start through their flow control. Answers their index entries.
 */
export async function startEventRuns(env: Env, targets: StepflareFunction[], accepted: AcceptedEvent, position: number): Promise<RunIndexEntry[]> {
  if (targets.length === 0) return [];
  const paused = await pausedFunctions(env);
  const held = targets.filter((fn) => paused.has(fn.id));
  if (held.length > 0) await recordPausedEvent(env, held.map((fn) => fn.id), accepted, position);
  const entries = await Promise.all(targets.filter((fn) => !paused.has(fn.id)).map((fn) => startEventRun(env, fn, accepted, position)));
  return entries.filter((entry) => entry !== null);
}

/**
 * Starts the run of one function for an event, through its flow control, its pause already
 * checked (by startEventRuns, or the resume that works through held events); null when none
 * starts (yet). `position` is the event's place in its queue batch (events accepted in the same
 * millisecond are collected in the order they were sent). The caller starts it again until a start
 * answers (RunInit `repeatedUntilAnswered`), unless it says otherwise.
 */
export async function startEventRun(env: Env, fn: StepflareFunction, accepted: AcceptedEvent, position: number, { repeatedUntilAnswered = true } = {}): Promise<RunIndexEntry | null> {
  const { event, receivedAt } = accepted;
  const runId = (await runIdScheme(env))(fn.id, event.id, receivedAt);
  const admitted = fn.hasFlowControl ? await admitRun(env, fn, accepted, runId, position) : { startAt: Math.max(event.ts, receivedAt) };
  if (admitted === "none") return null;
  // A skipped run has no object: its row in the runs index is its whole record.
  if ("skipped" in admitted) return { runId, functionId: fn.id, eventId: event.id, status: "Skipped", startedAt: receivedAt, skipReason: admitted.skipped };
  return startRun(env, { runId, functionId: fn.id, events: [event], startAt: admitted.startAt, startedAt: receivedAt, repeatedUntilAnswered });
}

/**
 * Starts the run a debounce or batch collected (its events, oldest first). Its id
 * derives from the collection's first event, so a start repeated after a crash changes nothing.
 * A function paused since holds the collected events for its resume instead (null).
 */
export async function startCollectedRun(env: Env, functionId: string, kind: "debounce" | "batch", events: AcceptedEvent[], handLastOnly: boolean): Promise<RunIndexEntry | null> {
  const now = Date.now();
  if ((await pausedFunctions(env)).has(functionId)) {
    for (const [position, accepted] of events.entries()) await recordPausedEvent(env, [functionId], accepted, position);
    return null;
  }
  const first = events[0]!;
  const runId = (await runIdScheme(env))(functionId, `${kind}:${first.event.id}`, first.receivedAt);
  const handed = (handLastOnly ? events.slice(-1) : events).map(({ event }) => event);
  // Events sent with a future `ts` start their run no sooner than the latest of them, as a plain function's would.
  const startAt = Math.max(now, ...handed.map((event) => event.ts));
  return startRun(env, { runId, functionId, events: handed, startAt, startedAt: now });
}
