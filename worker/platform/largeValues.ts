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
