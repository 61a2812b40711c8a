import { cancelPage } from "../admin/cancellations.ts";
import { resumePage } from "../admin/pauses.ts";
import { getEvents } from "../db/events.ts";
import { endRunStatement } from "../db/runs.ts";
import { ShardWrites } from "../db/shards.ts";
import type { Env } from "../platform/env.ts";
import { resolveEventData } from "../platform/largeValues.ts";
import { createLogger } from "../platform/logger.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import type { QueueMessage } from "../queue/messages.ts";
import { expireRuns } from "../schedule/retention.ts";
import { dispatchAccepted, refKey } from "./events.ts";

// The queue consumer: every message kind has its handler in `handlers`, a map typed over
// QueueMessage's kinds, so a kind without one does not compile.

type Kind = QueueMessage["type"];

/** Events one dispatch pass takes at most: a batch of 100 messages of packed events is a few passes, not one pass of a thousand. */
const DISPATCH_CHUNK = 100;
type MessageOf<K extends Kind> = Message<Extract<QueueMessage, { type: K }>>;

/**
 * How long one batch may take before its unsettled messages are retried and the consumer returns:
 * a batch waiting on a call that never answers would otherwise hold the queue (the local queue
 * delivers its next batch only when the consumer returns; in production until its wall-time limit).
 * Dispatch is idempotent, so a message retried while its first try goes on starts nothing twice.
 */
export const BATCH_TIME_LIMIT_MS = 30_000;

/** What a batch's handlers leave to do once they have all looked at their messages. */
class BatchWork {
  /** Events to dispatch in the batch's one pass (runs started, waits looked up). */
  readonly events: { message: Message<QueueMessage>; accepted: AcceptedEvent }[] = [];
  /** Statements written in the batch's one D1 round trip (per shard), before its messages are acked. */
  writes = new ShardWrites();
  /** Messages acked once the batch's D1 write went through. */
  readonly done: Message<QueueMessage>[] = [];
  /** Work of its own per message (a page of a bulk cancellation or a resume, runs to expire), going on beside the dispatch. */
  readonly pages: Promise<unknown>[] = [];
  /** Where the batch is, for the log of one that ran out of time. */
  stage = "handlers";
  /** Messages acked or retried; once the batch is closed (out of time), nothing more is. */
  private readonly settled = new Set<Message<QueueMessage>>();
  private closed = false;

  constructor(readonly env: Env) {}

  ack(message: Message<QueueMessage>): void {
    if (this.closed || this.settled.has(message)) return;
    this.settled.add(message);
    message.ack();
  }

  retry(message: Message<QueueMessage>): void {
    if (this.closed || this.settled.has(message)) return;
    this.settled.add(message);
    message.retry();
  }

  /** Retries every message not settled yet and settles nothing more: the batch ran out of time. */
  close(messages: readonly Message<QueueMessage>[]): number {
    const unsettled = messages.filter((message) => !this.settled.has(message));
    for (const message of unsettled) this.retry(message);
    this.closed = true;
    return unsettled.length;
  }

  /**
   * Runs `work` for `message` beside the dispatch and acks the message as soon as it is done (it
   * writes nothing with the batch), or retries it if it failed. The batch's events never wait for it.
   */
  page(message: Message<QueueMessage>, work: () => Promise<void>): void {
    this.pages.push(
      work().then(
        () => this.ack(message),
        (err: unknown) => {
          createLogger().error("a page of a bulk cancellation or a resume, or runs to expire, failed; will retry", { message: message.body, error: String(err) });
          this.retry(message);
        },
      ),
    );
  }
}

type Handlers = { [K in Kind]: (messages: MessageOf<K>[], work: BatchWork) => void | Promise<void> };

const handlers: Handlers = {
  events(messages, work) {
    for (const message of messages) for (const accepted of message.body.events) work.events.push({ message, accepted });
  },
  event(messages, work) {
    for (const message of messages) work.events.push({ message, accepted: { event: message.body.event, receivedAt: message.body.receivedAt } });
  },
  async "event-ref"(messages, work) {
    if (messages.length === 0) return;
    const refs = messages.map(({ body }) => ({ id: body.id, receivedAt: body.receivedAt }));
    const logged = await getEvents(work.env, refs);
    // Large events' data is in R2: fetched before triggers and waits look at it.
    await resolveEventData(work.env, logged);
    const referenced = new Map(logged.map((a) => [refKey({ id: a.event.id, receivedAt: a.receivedAt }), a]));
    for (const message of messages) {
      const accepted = referenced.get(refKey(message.body));
      if (accepted) {
        work.events.push({ message, accepted });
        continue;
      }
      // The event log has no such event (never stored, or a ref queued by a version that sent the
      // id alone): nothing to dispatch here; a stored event left undispatched is swept again.
      const { id, receivedAt } = message.body;
      createLogger({ event_id: id }).error("queued event not found in the event log", { received_at: receivedAt ?? null });
      work.done.push(message);
    }
  },
  // Only messages an earlier engine queued before an upgrade: a run's object now writes its end itself.
  "run-ended"(messages, work) {
    for (const message of messages) {
      // Sent by releases before shards, whose runs' rows are all on DB.
      work.writes.add(work.env.DB, endRunStatement(work.env.DB, { ...message.body }));
      work.done.push(message);
    }
  },
  "cancel-page"(messages, work) {
    for (const message of messages) work.page(message, () => cancelPage(work.env, message.body.cancellationId));
  },
  "resume-page"(messages, work) {
    for (const message of messages) work.page(message, () => resumePage(work.env, message.body.functionId, message.body.skip));
  },
  "expire-runs"(messages, work) {
    for (const message of messages) work.page(message, () => expireRuns(work.env, message.body.runIds));
  },
};

/**
 * The queue consumer (dispatch): hands each message to the handler of its kind, then for each
 * event starts a run of every function it triggers, and records the batch in D1 in one round trip
 * (runs index, events dispatched, run ends). Run ids are deterministic, so a redelivered message
 * starts nothing twice; a message is acked only when all of its work succeeded.
 */
export async function consumeBatch(batch: MessageBatch<QueueMessage>, env: Env, timeLimitMs = BATCH_TIME_LIMIT_MS): Promise<void> {
  const work = new BatchWork(env);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outOfTime = new Promise<"out of time">((resolve) => (timer = setTimeout(() => resolve("out of time"), timeLimitMs)));
  const outcome = await Promise.race([consume(batch, work).then(() => "done" as const), outOfTime]);
  clearTimeout(timer);
  if (outcome === "done") return;
  const retried = work.close(batch.messages);
  createLogger().error("a queue batch ran out of time; its unsettled messages will be retried", { stage: work.stage, messages: batch.messages.length, retried, limit_ms: timeLimitMs });
}

async function consume(batch: MessageBatch<QueueMessage>, work: BatchWork): Promise<void> {
  const byKind: { [K in Kind]: MessageOf<K>[] } = { events: [], event: [], "event-ref": [], "run-ended": [], "cancel-page": [], "resume-page": [], "expire-runs": [] };
  // The one cast: a message's kind is its body's, which TypeScript does not carry over to Message<…>.
  for (const message of batch.messages) (byKind[message.body.type] as Message<QueueMessage>[]).push(message);
  const handle = <K extends Kind>(kind: K) => handlers[kind](byKind[kind], work);
  await Promise.all((Object.keys(handlers) as Kind[]).map(handle));
  // Events dispatch in the order they came (a batch's position orders a debounce's or batch's events).
  const order = new Map(batch.messages.map((message, i) => [message, i]));
  work.events.sort((a, b) => order.get(a.message)! - order.get(b.message)!);
  await dispatchEvents(work);
  work.stage = "D1 write";
  await writeAndSettle(work, work.writes, new ShardWrites(), work.done);
  work.stage = "pages";
  await Promise.all(work.pages);
}

/** Writes a part of the batch's D1 work (`then` once `first` went through), then acks its messages, or retries them if the write failed. */
async function writeAndSettle(work: BatchWork, first: ShardWrites, then: ShardWrites, messages: Message<QueueMessage>[]): Promise<void> {
  try {
    await first.writeThen(work.env, then);
    for (const message of messages) work.ack(message);
  } catch (err) {
    createLogger().error("D1 write of a dispatched batch failed; will retry", { error: String(err) });
    for (const message of messages) work.retry(message);
  }
}

/**
 * The batch's passes over its events (dispatchAccepted), a chunk of whole messages (about
 * DISPATCH_CHUNK events) at a time: each chunk's D1 writes go out and its messages are settled
 * before the next chunk starts, so a batch that runs out of time keeps what it finished. A message
 * is acked once each of its events is dispatched (its runs started, every wait it resolves told);
 * otherwise it comes again, whole (dispatch is idempotent).
 */
async function dispatchEvents(work: BatchWork): Promise<void> {
  const { env, events } = work;
  let first = 0;
  while (first < events.length) {
    let end = Math.min(first + DISPATCH_CHUNK, events.length);
    // A message's events stay in one chunk.
    while (end < events.length && events[end]!.message === events[end - 1]!.message) end++;
    const chunk = events.slice(first, end);
    const outcome = await dispatchAccepted(
      env,
      chunk.map((entry) => entry.accepted),
      (stage) => (work.stage = stage),
      first,
    );
    const failed = new Set(chunk.filter((_, i) => !outcome.dispatched[i]).map((entry) => entry.message));
    for (const message of failed) work.retry(message);
    work.stage = "D1 write";
    await writeAndSettle(work, outcome.writes, outcome.marks, [...new Set(chunk.map((entry) => entry.message))].filter((message) => !failed.has(message)));
    first = end;
  }
}
