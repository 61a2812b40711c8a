import { getEvents, markDispatched } from "../db/events.ts";
import { endRunStatement, insertRunStatement, type RunIndexEntry } from "../db/runs.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import type { AcceptedEvent, EventRef, QueueMessage } from "../queue/messages.ts";
import { allFunctions } from "../platform/registry.ts";
import { hasRemoteCopy, loadRemoteFunctions } from "../remote/apps.ts";
import { runIdFor } from "../platform/runId.ts";
import { deliverMatches, findMatchingWaits } from "./waits.ts";
import { cancelPage } from "../admin/cancellations.ts";
import { admitRun } from "../flow/admission.ts";
import { pausedFunctions, recordPausedEvent, resumePage } from "../admin/pauses.ts";
import type { StepflareFunction } from "../../sdk/function.ts";

/**
 * The queue consumer (dispatch): for each event, start a run of every function it triggers,
 * then record the batch in D1 in one round trip (runs index, events dispatched, run ends).
 * Run ids are deterministic, so a redelivered message starts nothing twice; a message is acked
 * only when all of its work succeeded.
 */
export async function consumeBatch(batch: MessageBatch<QueueMessage>, env: Env): Promise<void> {
  const refs = batch.messages.flatMap((m) => (m.body.type === "event-ref" ? [{ id: m.body.id, receivedAt: m.body.receivedAt }] : []));
  const referenced = new Map((await getEvents(env.DB, refs)).map((a) => [refKey({ id: a.event.id, receivedAt: a.receivedAt }), a]));

  const ended: RunIndexEntry[] = [];
  const done: Message<QueueMessage>[] = [];
  const events: { message: Message<QueueMessage>; accepted: AcceptedEvent }[] = [];
  const pages: Promise<unknown>[] = [];
  for (const message of batch.messages) {
    const body = message.body;
    if (body.type === "run-ended") {
      ended.push({ ...body });
      done.push(message);
      continue;
    }
    if (body.type === "cancel-page" || body.type === "resume-page") {
      pages.push(
        (body.type === "cancel-page" ? cancelPage(env, body.cancellationId) : resumePage(env, body.functionId, body.skip, (fn, accepted, position) => startRunOf(env, fn, accepted, position))).then(
          () => done.push(message),
          (err: unknown) => {
            createLogger().error("a page of a bulk cancellation or a resume failed; will retry", { message: body, error: String(err) });
            message.retry();
          },
        ),
      );
      continue;
    }
    const accepted = body.type === "event" ? { event: body.event, receivedAt: body.receivedAt } : referenced.get(refKey(body));
    if (accepted) {
      events.push({ message, accepted });
      continue;
    }
    // The event log has no such event (never stored, or a ref queued by a version that sent the
    // id alone): nothing to dispatch here; a stored event left undispatched is swept again.
    const { id, receivedAt } = body as EventRef;
    createLogger({ event_id: id }).error("queued event not found in the event log", { received_at: receivedAt ?? null });
    done.push(message);
  }

  // The synced apps' functions. With a copy of them the batch does not wait for a fresher one (that
  // read goes on beside it: a D1 read awaited in every consumer batch stalled the local queue under
  // load in the workerd tests). An isolate with no copy reads one first, and if it cannot, dispatches
  // no event now: marked dispatched, an event of theirs would never start its runs.
  if (events.length > 0 && hasRemoteCopy()) void loadRemoteFunctions(env);
  else if (events.length > 0 && !(await loadRemoteFunctions(env))) {
    for (const { message } of events.splice(0)) message.retry();
  }
  // Runs start while D1 looks the batch's events up in the waits index: neither waits for the other.
  const now = Date.now();
  const [dispatches, matches] = await Promise.all([
    Promise.all(
      events.map(({ accepted }, position) =>
        dispatchEvent(env, accepted, position).catch((err: unknown) => {
          createLogger({ event_id: accepted.event.id }).error("dispatch failed; will retry", { error: String(err) });
          return null;
        }),
      ),
    ),
    findMatchingWaits(
      env,
      events.map((entry) => entry.accepted),
      now,
    ).catch((err: unknown) => {
      createLogger().error("waits lookup failed; the batch's events will be dispatched again", { error: String(err) });
      return null;
    }),
  ]);
  await Promise.all(pages);
  const { deleteStatements, failed } = matches ? await deliverMatches(env, matches) : { deleteStatements: [], failed: [] };
  const undelivered = new Set(failed.map((match) => refKey({ id: match.accepted.event.id, receivedAt: match.accepted.receivedAt })));

  const started: RunIndexEntry[] = [];
  const dispatched: EventRef[] = [];
  events.forEach(({ message, accepted }, i) => {
    const runs = dispatches[i];
    const ref = { id: accepted.event.id, receivedAt: accepted.receivedAt };
    // An event is dispatched once its runs are started and every wait it resolves has been told.
    if (runs === null || runs === undefined || matches === null || undelivered.has(refKey(ref))) return message.retry();
    started.push(...runs);
    dispatched.push(ref);
    done.push(message);
  });

  const statements = [
    ...started.map((run) => insertRunStatement(env.DB, run)),
    ...ended.map((run) => endRunStatement(env.DB, run)),
    ...deleteStatements,
    ...markDispatched(env.DB, dispatched, now),
  ];
  try {
    if (statements.length > 0) await env.DB.batch(statements);
    for (const message of done) message.ack();
  } catch (err) {
    createLogger().error("D1 write of a dispatched batch failed; will retry", { error: String(err) });
    for (const message of done) message.retry();
  }
}

/** One event's key in a map: its id alone may name several events. */
function refKey({ id, receivedAt }: EventRef): string {
  return `${receivedAt}\n${id}`;
}

/**
 * Starts a run of every function `accepted` triggers (fan-out) and answers their index entries.
 * A RunObject's start() returns once the run is stored with its alarm armed, not when it ends.
 */
export async function dispatchEvent(env: Env, accepted: AcceptedEvent, position = 0): Promise<RunIndexEntry[]> {
  const logger = createLogger({ event_id: accepted.event.id });
  const targets = allFunctions().filter((fn) => fn.matches(accepted.event, logger));
  if (targets.length === 0) return [];
  // A paused function's events wait for its resume.
  const paused = await pausedFunctions(env);
  const held = targets.filter((fn) => paused.has(fn.id));
  if (held.length > 0) await recordPausedEvent(env, held.map((fn) => fn.id), accepted, position);
  const entries = await Promise.all(targets.filter((fn) => !paused.has(fn.id)).map((fn) => startRunOf(env, fn, accepted, position)));
  return entries.filter((entry) => entry !== null);
}

/** Starts the run of one function for an event, through its flow control; null when none starts (yet). */
async function startRunOf(env: Env, fn: StepflareFunction, accepted: AcceptedEvent, position: number): Promise<RunIndexEntry | null> {
  const { event, receivedAt } = accepted;
  const runId = runIdFor(fn.id, event.id, receivedAt);
  const base = { runId, functionId: fn.id, eventId: event.id, startedAt: receivedAt };
  const admitted = fn.hasFlowControl ? await admitRun(env, fn, accepted, runId, position) : { startAt: Math.max(event.ts, receivedAt) };
  if (admitted === "none") return null;
  // A skipped run has no object: its row in the runs index is its whole record.
  if ("skipped" in admitted) return { ...base, status: "Skipped", skipReason: admitted.skipped };
  const status = await env.RUNS.get(env.RUNS.idFromName(runId)).start({ runId, functionId: fn.id, events: [event], startAt: admitted.startAt });
  return { ...base, status };
}
