import { utf8Bytes } from "../../sdk/output.ts";
import type { Env } from "../platform/env.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import type { QueueMessage } from "./messages.ts";

// The one sender to the EVENTS queue: every message kind (QueueMessage) leaves through here.

/** Queue limits: 128 KB per message, 100 messages and 256 KB per sendBatch (kept with a margin). */
const MAX_INLINE_MESSAGE_BYTES = 100 * 1024;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 200 * 1024;
/** A pack of events stays within one 64 KB unit of the queue's billing. */
const MAX_PACK_BYTES = 60 * 1024;

/**
 * Events one queue message carries at most. The queue bills each message (a write, a read and a
 * delete, per 64 KB), so a request's events travel several to a message; few enough that a consumer
 * batch of 100 messages stays a bounded amount of work.
 */
export const EVENTS_PER_MESSAGE = 10;

/**
 * Sends accepted events to the queue, in order, up to EVENTS_PER_MESSAGE to a message within the
 * queue's size limit; an event too large for a message travels by reference to the event log.
 */
export async function enqueueEvents(env: Env, accepted: AcceptedEvent[]): Promise<void> {
  const messages: QueueMessage[] = [];
  let pack: AcceptedEvent[] = [];
  let packBytes = 0;
  const close = () => {
    if (pack.length > 0) messages.push({ type: "events", events: pack });
    pack = [];
    packBytes = 0;
  };
  for (const entry of accepted) {
    const bytes = utf8Bytes(JSON.stringify(entry)) + 1;
    if (bytes > MAX_INLINE_MESSAGE_BYTES) {
      close();
      messages.push({ type: "event-ref", id: entry.event.id, receivedAt: entry.receivedAt });
      continue;
    }
    if (pack.length === EVENTS_PER_MESSAGE || (pack.length > 0 && packBytes + bytes > MAX_PACK_BYTES)) close();
    pack.push(entry);
    packBytes += bytes;
  }
  close();
  await sendMessages(env, messages);
}

/** Sends messages of any kind, in batches within the queue's limits. */
export async function sendMessages(env: Env, messages: QueueMessage[]): Promise<void> {
  let batch: MessageSendRequest<QueueMessage>[] = [];
  let batchBytes = 0;
  const sends: Promise<unknown>[] = [];
  for (const body of messages) {
    const bytes = utf8Bytes(JSON.stringify(body));
    if (batch.length === MAX_BATCH_MESSAGES || batchBytes + bytes > MAX_BATCH_BYTES) {
      sends.push(env.EVENTS.sendBatch(batch));
      batch = [];
      batchBytes = 0;
    }
    batch.push({ body, contentType: "json" });
    batchBytes += bytes;
  }
  if (batch.length > 0) sends.push(env.EVENTS.sendBatch(batch));
  await Promise.all(sends);
}
