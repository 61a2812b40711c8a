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

/** The depth and number of an event's fields that index keys are made of (see eventMatchKeys). */
const MAX_KEY_DEPTH = 6;
const MAX_KEYS = 256;

/**
 * The index key of a wait: the field path the incoming event must have, with the value it must
 * have there (`data.userId="u1"`), or null when the wait has no equality to look up by (its `if`
 * is then evaluated for every event of its name). `match` gives the path directly; an `if` that is
 * a plain equality between a field of `event` and one of `async` gives it too, and is then fully
 * decided by the key. A trigger without that field makes a key no event has.
 *
 * @example
 * waitIndexKey({ event: "app/user.activated", match: "data.userId" }, trigger); // { key: 'data.userId="u1"', residualIf: undefined }
 */
export function waitIndexKey(condition: WaitCondition, trigger: StoredEvent): { key: string | null; residualIf?: string } {
  const equality = condition.if ? plainEquality(condition.if) : null;
  if (condition.match) {
    return { key: keyOf(condition.match, valueAt(trigger, condition.match)), ...(condition.if ? { residualIf: condition.if } : {}) };
  }
  if (equality) return { key: keyOf(equality.asyncPath, valueAt(trigger, equality.eventPath)) };
  return { key: null, ...(condition.if ? { residualIf: condition.if } : {}) };
}

/**
 * Every index key an incoming event answers to: one per scalar field (strings, numbers, booleans),
 * at most MAX_KEYS of them, MAX_KEY_DEPTH levels deep. A consumer looks waits up by these.
 *
 * @example
 * eventMatchKeys({ name: "a", data: { userId: "u1" }, ... }); // ['id="…"', 'name="a"', 'data.userId="u1"', …]
 */
export function eventMatchKeys(event: StoredEvent): string[] {
  const keys: string[] = [];
  const visit = (value: unknown, path: string, depth: number) => {
    if (keys.length >= MAX_KEYS) return;
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return void keys.push(keyOf(path, value));
    if (value && typeof value === "object" && !Array.isArray(value) && depth < MAX_KEY_DEPTH) {
      for (const [field, inner] of Object.entries(value)) visit(inner, path ? `${path}.${field}` : field, depth + 1);
    }
  };
  visit(event, "", 0);
  return keys;
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
  if (key !== null && !eventMatchKeys(incoming).includes(key)) return false;
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

function keyOf(path: string, value: unknown): string {
  // A missing field makes a key of `undefined`, which no event's keys contain.
  return `${path}=${value === undefined ? "undefined" : JSON.stringify(value)}`;
}

function valueAt(event: StoredEvent, path: string): unknown {
  let value: unknown = event;
  for (const field of path.replace(/^event\./, "").split(".")) {
    if (value === null || typeof value !== "object") return undefined;
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
