// Turning thrown things into stored errors and back. Inngest's serializer keeps an error's `cause`
// (5 levels deep) and its own enumerable fields (`code`, `status`, …); we keep the same, bounded,
// because errors are stored in a run's rows and sent in events whose size is limited.
import type { SerializedError } from "../types.ts";

/** How many `cause` links are kept below the error itself (Inngest's serializer keeps 5). */
export const MAX_CAUSE_DEPTH = 5;
/** Longest message or stack kept of the error itself. */
const MAX_TEXT = 16 * 1024;
/** Longest message or stack kept of each cause: a chain of six full stacks is noise, not help. */
const MAX_CAUSE_TEXT = 4 * 1024;
/** Most JSON kept of an error's own fields, per error in the chain; fields past it are left out. */
const MAX_FIELDS_JSON = 4 * 1024;

// The fields every error has, or that the serialized shape names itself.
const SHAPE_KEYS = new Set(["name", "message", "stack", "cause", "__serialized"]);

/**
 * Turns anything thrown into a SerializedError (non-Errors included): name, message and stack
 * cut to 16 KiB, its JSON own enumerable fields, and its `cause` chain up to 5 levels.
 *
 * @example
 * serializeError(new Error("Oh no!", { cause: new Error("This is the cause") }));
 * // { name: "Error", message: "Oh no!", stack: "…", cause: { name: "Error", message: "This is the cause", stack: "…" } }
 */
export function serializeError(err: unknown): SerializedError {
  return serializeAt(err, 0, new Set()) as SerializedError;
}

function serializeAt(err: unknown, depth: number, seen: Set<unknown>): SerializedError | unknown {
  const limit = depth === 0 ? MAX_TEXT : MAX_CAUSE_TEXT;
  if (!isErrorLike(err)) {
    // A cause may be any value (`{ cause: "timeout" }`): kept as JSON, as Inngest keeps it.
    if (depth > 0) return boundedCause(err);
    return { name: "Error", message: cut(messageOf(err), limit) };
  }
  seen.add(err);
  const serialized: SerializedError = { name: cut(String(err.name || "Error"), limit), message: cut(String(err.message ?? ""), limit) };
  if (typeof err.stack === "string" && err.stack) serialized.stack = cut(err.stack, limit);
  Object.assign(serialized, ownFields(err));
  const cause = err.cause;
  if (cause !== undefined && cause !== null && depth < MAX_CAUSE_DEPTH && !seen.has(cause)) {
    const kept = serializeAt(cause, depth + 1, seen);
    if (kept !== undefined) serialized.cause = kept;
  }
  return serialized;
}

/**
 * Rebuilds an Error from a SerializedError: same name, message, stack and fields, its `cause`
 * rebuilt the same way (a non-error cause stays the value it was).
 *
 * @example
 * deserializeError({ name: "Error", message: "Oh no!", cause: { name: "Error", message: "This is the cause" } }).cause.message;
 */
export function deserializeError(serialized: SerializedError): Error {
  const error = new Error(serialized.message);
  // name and stack as on a thrown Error: own, but not enumerable.
  Object.defineProperty(error, "name", { value: serialized.name, enumerable: false, configurable: true, writable: true });
  if (serialized.stack) Object.defineProperty(error, "stack", { value: serialized.stack, enumerable: false, configurable: true, writable: true });
  for (const [key, value] of Object.entries(serialized)) if (!SHAPE_KEYS.has(key)) (error as unknown as Record<string, unknown>)[key] = value;
  if (serialized.cause !== undefined) {
    const cause = isSerializedShape(serialized.cause) ? deserializeError(serialized.cause) : serialized.cause;
    Object.defineProperty(error, "cause", { value: cause, enumerable: false, configurable: true, writable: true });
  }
  return error;
}

/** True for a value shaped as a SerializedError (`name` and `message` strings). */
export function isSerializedShape(value: unknown): value is SerializedError {
  return typeof value === "object" && value !== null && typeof (value as { name?: unknown }).name === "string" && typeof (value as { message?: unknown }).message === "string";
}

type ErrorLike = { name?: unknown; message?: unknown; stack?: unknown; cause?: unknown };

// An Error, or an object that has been one (a serialized error coming back, an Error from another realm).
function isErrorLike(value: unknown): value is ErrorLike & object {
  return value instanceof Error || isSerializedShape(value);
}

/** The error's own enumerable fields whose values are JSON, within MAX_FIELDS_JSON in all. */
function ownFields(err: object): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  let budget = MAX_FIELDS_JSON;
  for (const key of Object.keys(err)) {
    if (SHAPE_KEYS.has(key)) continue;
    const value = jsonOrUndefined((err as Record<string, unknown>)[key]);
    if (value === undefined) continue;
    const size = JSON.stringify(value).length + key.length;
    if (size > budget) continue;
    budget -= size;
    kept[key] = value;
  }
  return kept;
}

/** The value as it survives JSON (a copy), or undefined when it does not (functions, cycles, BigInt). */
function jsonOrUndefined(value: unknown): unknown {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A cause that is not an error, as JSON; as cut text when its JSON is longer than a cause's text may be. */
function boundedCause(value: unknown): unknown {
  const json = jsonOrUndefined(value);
  if (json === undefined) return String(value);
  const text = JSON.stringify(json);
  return text.length <= MAX_CAUSE_TEXT ? json : cut(text, MAX_CAUSE_TEXT);
}

function messageOf(err: unknown): string {
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

function cut(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}… (${text.length - limit} more characters)`;
}
