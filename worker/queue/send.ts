import { utf8Bytes } from "../../sdk/output.ts";
import type { Env } from "../platform/env.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import type { QueueMessage } from "./messages.ts";

// The one sender to the EVENTS queue: every message kind (QueueMessage) leaves through here.

/** Queue limits: 128 KB per message, 100 messages and 256 KB per sendBatch (kept with a margin). */
const MAX_INLINE_MESSAGE_BYTES = 100 * 1024;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 200 * 1024;

/** Sends accepted events to the queue, in batches within the queue's limits. */
export async function enqueueEvents(env: Env, accepted: AcceptedEvent[]): Promise<void> {
  const messages = accepted.map(({ event, receivedAt }): QueueMessage => {
    const inline: QueueMessage = { type: "event", event, receivedAt };
    return utf8Bytes(JSON.stringify(inline)) <= MAX_INLINE_MESSAGE_BYTES ? inline : { type: "event-ref", id: event.id, receivedAt };
  });
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
