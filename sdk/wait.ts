import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { z } from "zod";
import { toMilliseconds } from "./duration.ts";
import { nameSchema, type StoredEvent } from "./event.ts";
import { compileExpression } from "./expression.ts";
import type { SerializedError } from "./types.ts";
import type { StepRecord } from "./run.ts";

// Waits (step.waitForEvent, cancelOn) and child runs (step.invoke): what a waiting step stores, how
// an incoming event is matched against a wait by index key, and how a result settles a waiting step.
// Pure: the RunObject, the queue consumer and sdk/testing.ts share it.

/** One event a wait listens for: its name, and how it must relate to the run's trigger event. */
export interface WaitCondition {
  event: string;
  /** A field path both events agree on (Inngest's `match: "data.userId"`). */
  match?: string;
  /** CEL over `event` (the run's trigger) and `async` (the incoming event). */
  if?: string;
}

/**
 * What a `waitForEvent` step stores while it waits. `mode` says what it returns: `one` the event,
 * `any` the first of several, `all` one event per condition (in the conditions' order).
 */
export interface WaitRequest {
  type: "wait";
  conditions: WaitCondition[];
  mode: "one" | "any" | "all";
  /** Events received at or after this time count (the wait's start, less its `lookback`). */
  since: number;
  timeoutAt: number;
}

/** What a `step.invoke` step stores while its child runs. */
export interface InvokeRequest {
  type: "invoke";
  functionId: string;
  data: Record<string, unknown>;
  timeoutAt: number;
}

export type StepRequest = WaitRequest | InvokeRequest;

/** How a child run ended, as its parent's invoke step receives it. */
export type InvokeResult = { output: unknown } | { error: SerializedError };

/**
 * The most keys an event's one-query lookup names (one per field, list and map, at any depth). An
 * event with more asks which paths the open waits of its name are keyed by first, and looks up
 * only its keys at those (worker/runs/waits.ts): two queries instead of one, and no field missed.
 */
export const MAX_EVENT_KEYS = 256;

/**
 * The index key of a wait: the field path the incoming event must have, with the value it must
 * have there (`data.userId="u1"`; a list or map by a digest of its canonical JSON, `data.tags=#…`),
 * or null when the wait has no equality to look up by (its `if` is then evaluated for every event
 * of its name). `match` gives the path directly; an `if` that is a plain equality between a field
 * of `event` and one of `async` gives it too, and is then fully decided by the key. A trigger
 * without that field makes a key no event has.
 *
 * @example
 * waitIndexKey({ event: "app/user.activated", match: "data.userId" }, trigger); // { key: 'data.userId="u1"' }
 */
export function waitIndexKey(condition: WaitCondition, trigger: StoredEvent): { key: string | null; residualIf?: string } {
  const equality = condition.if ? plainEquality(condition.if) : null;
  if (condition.match) {
    const path = condition.match.replace(/^event\./, "");
    return { key: keyOf(path, tokenOf(valueAt(trigger, path))), ...(condition.if ? { residualIf: condition.if } : {}) };
  }
  if (equality) return { key: keyOf(equality.asyncPath, tokenOf(valueAt(trigger, equality.eventPath))) };
  return { key: null, ...(condition.if ? { residualIf: condition.if } : {}) };
}

/**
 * Every index key an incoming event answers to, one per field at any depth (scalars, null, and
 * each list and map as a whole); null when it has more than MAX_EVENT_KEYS of them, and is then
 * looked up by eventKeyAt at the paths the waits of its name use. A consumer looks waits up by these.
 *
 * @example
 * eventMatchKeys({ name: "a", data: { userId: "u1" }, ... }); // ['id="…"', 'name="a"', 'data=#…', 'data.userId="u1"', …]
 */
export function eventMatchKeys(event: StoredEvent): string[] | null {
  if (countFields(event, MAX_EVENT_KEYS + 1) > MAX_EVENT_KEYS) return null;
  const keys: string[] = [];
  tokenOf(event, "", (path, token) => void (path && keys.push(keyOf(path, token))));
  return keys;
}

/** The key `event` has at the path of the stored key `key`, or null when it has no value there. */
export function eventKeyAt(event: StoredEvent, key: string): string | null {
  const path = keyPathOf(key);
  const value = valueAt(event, path);
  return value === undefined ? null : keyOf(path, tokenOf(value));
}

/** True when `event` has, at the stored key's path, the value the key names (exact: not a key set's truncation). */
export function answersKey(event: StoredEvent, key: string): boolean {
  return eventKeyAt(event, key) === key;
}

/** The field path of a stored key (`data.userId` of `data.userId="u1"`). */
export function keyPathOf(key: string): string {
  const at = key.indexOf("=");
  return decodePath(at < 0 ? key : key.slice(0, at));
}

/**
 * True when `incoming` satisfies a wait's residual `if` (the part its index key does not decide).
 * An expression that fails on this event (a missing field) does not match it.
 */
export function satisfiesIf(expression: string | undefined, trigger: StoredEvent, incoming: StoredEvent): boolean {
  if (!expression) return true;
  try {
    return compileExpression(expression, "wait")({ event: trigger, async: incoming }) === true;
  } catch {
    return false;
  }
}

/** True when `incoming` answers the condition, key and `if` alike (a lookback reads events without the index). */
export function matchesCondition(condition: WaitCondition, trigger: StoredEvent, incoming: StoredEvent): boolean {
  if (condition.event !== incoming.name) return false;
  const { key, residualIf } = waitIndexKey(condition, trigger);
  if (key !== null && !answersKey(incoming, key)) return false;
  return satisfiesIf(residualIf, trigger, incoming);
}

/**
 * The step once `event` has arrived for condition `index`, or null if the step no longer waits
 * for it (resolved already, timed out by `now`, or that condition already met). `now` is the
 * time of the resolution: a replay settles the step at the first invocation that began after it.
 */
export function resolveWait(step: StepRecord, index: number, event: StoredEvent, now: number): StepRecord | null {
  const request = step.request;
  if (step.status !== "waiting" || request?.type !== "wait" || now >= (step.wakeAt ?? 0)) return null;
  if (request.mode !== "all") return { ...step, status: "completed", attempts: 1, output: event, wakeAt: now, endedAt: now };
  const received = Array.isArray(step.output) ? [...(step.output as (StoredEvent | null)[])] : request.conditions.map(() => null);
  if (index < 0 || index >= received.length || received[index] !== null) return null;
  received[index] = event;
  if (received.some((entry) => entry === null)) return { ...step, output: received };
  return { ...step, status: "completed", attempts: 1, output: received, wakeAt: now, endedAt: now };
}

/** The invoke step once its child has ended, or null if it no longer waits (resolved, timed out). */
export function resolveInvoke(step: StepRecord, result: InvokeResult, now: number): StepRecord | null {
  if (step.status !== "waiting" || step.request?.type !== "invoke" || now >= (step.wakeAt ?? 0)) return null;
  const base = { ...step, attempts: 1, wakeAt: now, endedAt: now };
  return "error" in result ? { ...base, status: "failed", error: result.error } : { ...base, status: "completed", output: result.output };
}

/** A key: the path (its `%` and `=` escaped, so the first `=` ends it) and the value's token. */
function keyOf(path: string, token: string): string {
  return `${path.replace(/%/g, "%25").replace(/=/g, "%3D")}=${token}`;
}

function decodePath(encoded: string): string {
  return encoded.replace(/%3D/g, "=").replace(/%25/g, "%");
}

const utf8 = new TextEncoder();

/** A value as it reads in a key: a scalar's JSON, `#` and a digest for a list or a map, `undefined` for no value (which no event has). */
function tokenOf(root: unknown, rootPath = "", visit?: (path: string, token: string) => void): string {
  if (!isContainer(root)) {
    const token = root === undefined ? "undefined" : JSON.stringify(root);
    visit?.(rootPath, token);
    return token;
  }
  // Iterative, so a deep value cannot overflow the stack. A map's canonical form sorts its keys (CEL's
  // map equality ignores their order); a nested list or map enters its parent as its own digest.
  type Frame = { path: string; field: string; isList: boolean; entries: [string, unknown][]; next: number; parts: string[] };
  const open = (value: object, path: string, field: string): Frame => {
    const isList = Array.isArray(value);
    const entries = isList ? value.map((item, i): [string, unknown] => [String(i), item]) : Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { path, field, isList, entries, next: 0, parts: [] };
  };
  const stack = [open(root, rootPath, "")];
  const part = (frame: Frame, field: string, token: string) => frame.parts.push(frame.isList ? token : `${JSON.stringify(field)}:${token}`);
  let token = "";
  while (stack.length > 0) {
    const top = stack.at(-1)!;
    if (top.next < top.entries.length) {
      const [field, value] = top.entries[top.next++]!;
      const path = top.path ? `${top.path}.${field}` : field;
      if (isContainer(value)) {
        stack.push(open(value, path, field));
        continue;
      }
      const scalar = value === undefined ? "null" : JSON.stringify(value);
      part(top, field, scalar);
      visit?.(path, scalar);
      continue;
    }
    stack.pop();
    token = `#${bytesToHex(sha256(utf8.encode(top.isList ? `[${top.parts.join(",")}]` : `{${top.parts.join(",")}}`)).slice(0, 16))}`;
    visit?.(top.path, token);
    const parent = stack.at(-1);
    if (parent) part(parent, top.field, token);
  }
  return token;
}

function isContainer(value: unknown): value is object {
  return value !== null && typeof value === "object";
}

/** How many fields (at any depth, lists and maps included) `root` has, counting no further than `stopAt`. */
function countFields(root: unknown, stopAt: number): number {
  let count = 0;
  const pending: unknown[] = [root];
  while (pending.length > 0 && count < stopAt) {
    const value = pending.pop();
    if (!isContainer(value)) continue;
    for (const inner of Object.values(value)) {
      count++;
      pending.push(inner);
    }
  }
  return count;
}

/** The value at a dotted path (own fields only; a list's items by index), or undefined. */
function valueAt(event: StoredEvent, path: string): unknown {
  let value: unknown = event;
  for (const field of path.replace(/^event\./, "").split(".")) {
    if (!isContainer(value) || !Object.hasOwn(value, field)) return undefined;
    value = (value as Record<string, unknown>)[field];
  }
  return value;
}

const PATH = String.raw`[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*`;
const EQUALITY = new RegExp(String.raw`^\s*(event|async)\.(${PATH})\s*==\s*(event|async)\.(${PATH})\s*$`);

/** `event.data.x == async.data.y` (either way round) as the two paths, or null for anything else. */
function plainEquality(expression: string): { eventPath: string; asyncPath: string } | null {
  const found = EQUALITY.exec(expression);
  if (!found || found[1] === found[3]) return null;
  return found[1] === "event" ? { eventPath: found[2]!, asyncPath: found[4]! } : { eventPath: found[4]!, asyncPath: found[2]! };
}

/** The longest a wait or child run may last (a DO alarm has no limit; this keeps ids and rows bounded in time). */
const MAX_WAIT_MS = 366 * 24 * 60 * 60 * 1000;
/** How long an invoke waits for its child when it names no timeout. */
const DEFAULT_INVOKE_TIMEOUT_MS = 365 * 24 * 60 * 60 * 1000;

const durationSchema = z.union([z.number().nonnegative(), z.string().min(1)]);
const conditionFields = { match: z.string().min(1).max(255).optional(), if: z.string().min(1).max(4096).optional() };
const conditionSchema = z.union([nameSchema, z.object({ event: nameSchema, ...conditionFields }).strict()]);

/** `step.waitForEvent`'s options: one event, or several with `mode`. */
export const waitOptionsSchema = z.union([
  z.object({ event: nameSchema, timeout: durationSchema, lookback: durationSchema.optional(), ...conditionFields }).strict(),
  z
    .object({
      events: z.array(conditionSchema).min(1).max(10),
      mode: z.enum(["any", "all"]),
      timeout: durationSchema,
      lookback: durationSchema.optional(),
      ...conditionFields,
    })
    .strict(),
]);
export type WaitOptions = z.input<typeof waitOptionsSchema>;

/** `step.invoke`'s options: the function (a function object, or its id), its `data`, an optional timeout. */
export const invokeOptionsSchema = z
  .object({
    function: z.union([nameSchema, z.custom<{ id: string }>((value) => typeof (value as { id?: unknown } | null)?.id === "string", "must be a function from createFunction or its id")]),
    data: z.record(z.string(), z.unknown()).optional(),
    timeout: durationSchema.optional(),
  })
  .strict();

/**
 * The request a `waitForEvent` step stores, from the options a handler wrote; throws a TypeError
 * that says what is wrong (an unreadable duration, an `if` that does not parse).
 *
 * @example
 * buildWaitRequest({ event: "app/user.activated", match: "data.userId", timeout: "3d" }, Date.now());
 */
export function buildWaitRequest(options: unknown, now: number): WaitRequest {
  const parsed = parseOptions(waitOptionsSchema, options, "step.waitForEvent");
  const shared = { ...(parsed.match ? { match: parsed.match } : {}), ...(parsed.if ? { if: parsed.if } : {}) };
  const conditions: WaitCondition[] =
    "event" in parsed
      ? [{ event: parsed.event, ...shared }]
      : parsed.events.map((entry) => (typeof entry === "string" ? { event: entry, ...shared } : { ...shared, ...entry }));
  for (const condition of conditions) if (condition.if) compileExpression(condition.if, "step.waitForEvent");
  const timeout = toMilliseconds(parsed.timeout);
  if (timeout > MAX_WAIT_MS) throw new TypeError(`step.waitForEvent: timeout ${timeout} ms is over the limit of 366 days`);
  const lookback = parsed.lookback === undefined ? 0 : toMilliseconds(parsed.lookback);
  return { type: "wait", conditions, mode: "event" in parsed ? "one" : parsed.mode, since: now - lookback, timeoutAt: now + timeout };
}

/** The request a `step.invoke` step stores; throws a TypeError that says what is wrong. */
export function buildInvokeRequest(options: unknown, now: number): InvokeRequest {
  const parsed = parseOptions(invokeOptionsSchema, options, "step.invoke");
  const timeout = parsed.timeout === undefined ? DEFAULT_INVOKE_TIMEOUT_MS : toMilliseconds(parsed.timeout);
  if (timeout > MAX_WAIT_MS) throw new TypeError(`step.invoke: timeout ${timeout} ms is over the limit of 366 days`);
  const functionId = typeof parsed.function === "string" ? parsed.function : parsed.function.id;
  return { type: "invoke", functionId, data: parsed.data ?? {}, timeoutAt: now + timeout };
}

function parseOptions<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new TypeError(`${what}: invalid options${issue?.path.length ? ` at ${issue.path.join(".")}` : ""}: ${issue?.message ?? "invalid"}`);
}
