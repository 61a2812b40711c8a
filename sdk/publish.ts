import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { serialize, utf8Bytes } from "./output.ts";
import { serializeError } from "./types.ts";

/** The largest `data` one `step.publish` may carry, as JSON (a message is progress, not a payload). */
export const MAX_PUBLISH_BYTES = 64 * 1024;
/** Topics are names: 1..255 characters, as ids and event names are (DESIGN "Limits"). */
const MAX_TOPIC_CHARS = 255;

/** A message a handler published, as its run stores it (the output of its `publish` step). */
export interface PublishedMessage {
  topic: string;
  data: unknown;
}

/**
 * Checks and snapshots what `step.publish(topic, data)` was given: the topic a name, the data
 * its JSON round-trip (as a step output is) of at most 64 KiB. Throws a NonRetriableError that
 * says which limit was broken: the same call would break it again on a retry.
 *
 * @example
 * preparePublish("progress", { done: 3, of: 10 }); // { topic: "progress", data: { done: 3, of: 10 } }
 */
export function preparePublish(topic: unknown, data: unknown): PublishedMessage {
  if (typeof topic !== "string" || topic.length === 0 || topic.length > MAX_TOPIC_CHARS) {
    throw new NonRetriableError(`step.publish: the topic must be a string of 1 to ${MAX_TOPIC_CHARS} characters, got ${describe(topic)}`);
  }
  let serialized;
  try {
    serialized = serialize(data);
  } catch (err) {
    throw new NonRetriableError(`step.publish("${topic}") data is not JSON-serializable: ${serializeError(err).message}`);
  }
  if (serialized.bytes > MAX_PUBLISH_BYTES) {
    throw new NonRetriableError(
      `step.publish("${topic}") data is ${(serialized.bytes / 1024).toFixed(1)} KiB; the limit is 64 KiB: publish a reference (an id, a URL) instead`,
    );
  }
  return { topic, data: serialized.value };
}

/** Size in UTF-8 bytes of a message as stored, for the run's state limit. */
export function publishedBytes(message: PublishedMessage): number {
  return utf8Bytes(JSON.stringify(message));
}

function describe(value: unknown): string {
  if (typeof value !== "string") return typeof value;
  return value.length === 0 ? "an empty string" : `${value.length} characters`;
}
