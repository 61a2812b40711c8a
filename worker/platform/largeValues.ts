import type { StoredEvent } from "../../sdk/event.ts";
import type { Env } from "./env.ts";
import { usage } from "./usage.ts";

// Large values in R2 (DESIGN "Scale"): a step output, a run's events or an event's data whose JSON
// passes LARGE_VALUE_CHARS is written to the optional `VALUES` bucket, and the row that would have
// held it holds a short reference instead. The object is written before the row that names it, so
// a crash leaves at most an orphan object, never a reference to nothing; keys are deterministic, so
// a write repeated after a crash overwrites the same object. Without the binding nothing here runs.

const MiB = 1024 * 1024;

/**
 * JSON longer than this goes to R2 when a bucket is bound: what one SQLite value holds with room to
 * spare (2 MB per value; a char is at most 3 bytes of UTF-8). Without a bucket, a run's object splits
 * such a value across rows (RunStore's `parts`), and the event API refuses it.
 */
export const LARGE_VALUE_CHARS = 500_000;
/**
 * The most one step output or one event may be with a bucket bound. Not R2's (5 GiB per put): a run
 * holds its outputs in its object's memory (128 MB per isolate), and a value is held there several
 * times while it is stored (the value, its JSON, its UTF-8 bytes), so 16 MiB keeps the peak well under it.
 */
export const MAX_LARGE_VALUE_BYTES = 16 * MiB;
/** Starts a stored value that lives in R2 (JSON text never starts with "r", and an event's data is an object). */
export const R2_MARKER = "r2:";

/** What to say where a limit would be lifted by binding a bucket. */
export const BIND_R2_HINT = `bind an R2 bucket as VALUES to raise it to ${MAX_LARGE_VALUE_BYTES / MiB} MiB (docs/deploying.md)`;

/** The bucket for large values, if one is bound. */
export function valuesBucket(env: Pick<Env, "VALUES">): R2Bucket | undefined {
  return env.VALUES;
}

/** The key of a value a run stores: under the run's prefix, so its retention deletes them together. */
export function runValueKey(runId: string, owner: string): string {
  return `${runPrefix(runId)}${owner}`;
}

export function runPrefix(runId: string): string {
  return `runs/${runId}/`;
}

/** The key of an event's data: under its day of receipt, so retention deletes a day at a time. */
export function eventValueKey(id: string, receivedAt: number): string {
  return `${eventDayPrefix(receivedAt)}${id}.${receivedAt}`;
}

/** `events/2026-04-25/`: the prefix of the events received that day (UTC). */
export function eventDayPrefix(at: number): string {
  return `events/${new Date(at).toISOString().slice(0, 10)}/`;
}

/**
 * Writes `text` under `key` and answers the reference a row stores in its place.
 *
 * @example
 * const stored = await putValue(bucket, runValueKey(runId, stepId), text); // "r2:runs/…"
 */
export async function putValue(bucket: R2Bucket, key: string, text: string): Promise<string> {
  await bucket.put(key, text, { httpMetadata: { contentType: "application/json" } });
  usage.r2ClassA++;
  return `${R2_MARKER}${key}`;
}

/**
 * The value a reference names, parsed. Throws when the bucket is not bound or the object is gone
 * (deleted by hand, or the binding points at another bucket than the one that stored it).
 *
 * @example
 * const output = await getValue(env.VALUES, "r2:runs/…/steps/…");
 */
export async function getValue(bucket: R2Bucket | undefined, reference: string): Promise<unknown> {
  const key = reference.slice(R2_MARKER.length);
  if (!bucket) throw new Error(`a value is stored in R2 (${key}) but no bucket is bound as VALUES: bind the bucket that stored it`);
  const object = await bucket.get(key);
  usage.r2ClassB++;
  if (!object) throw new Error(`a value stored in R2 is missing from the VALUES bucket: ${key}`);
  return JSON.parse(await object.text());
}

/**
 * Deletes every object under `prefix`, a page of 1,000 keys per list; answers how many went.
 *
 * @example
 * await deletePrefix(bucket, runPrefix(runId));
 */
export async function deletePrefix(bucket: R2Bucket, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, ...(cursor ? { cursor } : {}) });
    usage.r2ClassA++;
    const keys = page.objects.map((object) => object.key);
    // Deletes are free: not counted.
    if (keys.length > 0) await bucket.delete(keys);
    deleted += keys.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return deleted;
}

/**
 * Deletes the event values of the oldest day stored, if that whole day is past `before` (retention):
 * one list a call, one day at a time. Answers the objects deleted.
 *
 * @example
 * await deleteExpiredEventValues(bucket, Date.now() - 30 * 86_400_000);
 */
export async function deleteExpiredEventValues(bucket: R2Bucket, before: number): Promise<number> {
  const days = await bucket.list({ prefix: "events/", delimiter: "/", limit: 1 });
  usage.r2ClassA++;
  const oldest = days.delimitedPrefixes[0];
  // A day goes once every event of it is past retention: its prefix sorts before the cutoff's day.
  if (!oldest || oldest >= eventDayPrefix(before)) return 0;
  return deletePrefix(bucket, oldest);
}

/** Event data read from the log whose JSON is in R2: what it names, until resolveEventData() fetches it. */
const eventDataReferences = new WeakMap<object, string>();

/**
 * What an event's data reads as while its JSON is in R2 (`stored` is the log's reference):
 * `{ "$r2": key }`, which views show as it is; resolveEventData() fetches the real data. Only
 * objects made here are fetched, never a sender's data of the same shape.
 */
export function eventDataPlaceholder(stored: string): Record<string, unknown> {
  const placeholder = { $r2: stored.slice(R2_MARKER.length) };
  eventDataReferences.set(placeholder, stored);
  return placeholder;
}

/**
 * Writes the data of each event whose JSON passes LARGE_VALUE_CHARS to R2 (a bucket is bound),
 * before the log's rows that name it; answers what each such event's `data` column stores.
 * Undefined without a bucket or a large event.
 *
 * @example
 * const stored = await offloadEventData(env, events, receivedAt);
 * await insertEvents(env, events, receivedAt, stored);
 */
export async function offloadEventData(env: Pick<Env, "VALUES">, events: StoredEvent[], receivedAt: number): Promise<Map<StoredEvent, string> | undefined> {
  const bucket = env.VALUES;
  if (!bucket) return undefined;
  let stored: Map<StoredEvent, string> | undefined;
  for (const event of events) {
    const text = JSON.stringify(event.data);
    if (text.length <= LARGE_VALUE_CHARS) continue;
    stored ??= new Map();
    stored.set(event, await putValue(bucket, eventValueKey(event.id, receivedAt), text));
  }
  return stored;
}

/**
 * Fetches the data of every event read from the log whose data is in R2, in place; nothing
 * (no call) when none is.
 *
 * @example
 * await resolveEventData(env, await getEvents(env, refs));
 */
export async function resolveEventData(env: Pick<Env, "VALUES">, accepted: Iterable<{ event: StoredEvent }>): Promise<void> {
  const loads: Promise<void>[] = [];
  for (const item of accepted) {
    const stored = eventDataReferences.get(item.event.data);
    if (stored) loads.push(getValue(env.VALUES, stored).then((data) => void (item.event = { ...item.event, data: data as Record<string, unknown> })));
  }
  await Promise.all(loads);
}
