import { z } from "zod";
import { toMilliseconds } from "./duration.ts";
import type { StoredEvent } from "./event.ts";
import { compileExpression, type Expression } from "./expression.ts";

// Flow control (DESIGN "Flow control"): the options a function may ask for, validated at
// registration, and the pure arithmetic a coordinator object applies (GCRA for rates).

const DAY_MS = 24 * 60 * 60 * 1000;

/** A duration between `min` and `max` ms, as text or ms, read at registration. */
function boundedDuration(what: string, minMs: number, maxMs: number) {
  return z.union([z.number().nonnegative(), z.string().min(1)]).transform((value, ctx) => {
    try {
      const ms = toMilliseconds(value);
      if (ms >= minMs && ms <= maxMs) return ms;
      ctx.addIssue({ code: "custom", message: `${what} must be between ${minMs} ms and ${maxMs} ms, got ${ms} ms` });
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
    return z.NEVER;
  });
}

const keySchema = z.string().min(1).max(1024).optional();
const limitSchema = z.number().int().min(1).max(100_000);

export const rateLimitSchema = z.object({ limit: limitSchema, period: boundedDuration("rateLimit.period", 1000, DAY_MS), key: keySchema }).strict();
export type RateLimit = z.output<typeof rateLimitSchema>;
export const throttleSchema = z
  .object({ limit: limitSchema, period: boundedDuration("throttle.period", 1000, 7 * DAY_MS), burst: z.number().int().min(1).max(100_000).optional(), key: keySchema })
  .strict();
export type Throttle = z.output<typeof throttleSchema>;
export const debounceSchema = z
  .object({
    period: boundedDuration("debounce.period", 1000, 7 * DAY_MS),
    key: keySchema,
    timeout: boundedDuration("debounce.timeout", 1000, 7 * DAY_MS).optional(),
    /** Beyond Inngest: hand the run every debounced event in `events`, not only the last. */
    events: z.enum(["last", "all"]).optional(),
  })
  .strict();
export type Debounce = z.output<typeof debounceSchema>;
export const singletonSchema = z.object({ key: keySchema, mode: z.enum(["skip", "cancel"]) }).strict();
export type Singleton = z.output<typeof singletonSchema>;

const concurrencyLimitSchema = z.object({ limit: z.number().int().min(1).max(10_000), key: keySchema }).strict();
export type ConcurrencyLimit = z.output<typeof concurrencyLimitSchema>;
/** A number, `{ limit, key? }`, or up to two of those (say, per function and per customer). */
export const concurrencySchema = z
  .union([z.number().int().min(1).max(10_000), concurrencyLimitSchema, z.array(z.union([z.number().int().min(1).max(10_000), concurrencyLimitSchema])).min(1).max(2)])
  .transform((value) => (Array.isArray(value) ? value : [value]).map((entry) => (typeof entry === "number" ? { limit: entry } : entry)));

/** `priority.run`: CEL over `event` giving seconds (-600..600) a queued run moves ahead (or back). */
export const prioritySchema = z.object({ run: z.string().min(1).max(1024) }).strict();

export const batchEventsSchema = z.object({ maxSize: z.number().int().min(1).max(1000), timeout: boundedDuration("batchEvents.timeout", 1000, 60_000), key: keySchema }).strict();
export type BatchEvents = z.output<typeof batchEventsSchema>;

/** The event the engine sends when a budget pauses a function (`scope: "function"`) or every function (`scope: "account"`). */
export const BUDGET_EXCEEDED_EVENT = "stepflare/function.budget_exceeded";

/** How far back a budget counts: the last hour, or the last 24 hours (a rolling window). */
export const BUDGET_PERIODS = { "1h": 3_600_000, "1d": DAY_MS } as const;

/**
 * Beyond Inngest: `budget` pauses the function once it has started `runs` runs, or its runs have
 * taken `steps` steps, in the last `period` ("1h" or "1d", a rolling window), and sends
 * `stepflare/function.budget_exceeded` once (docs/flow-control.md "Budgets").
 */
export const budgetSchema = z
  .object({ runs: z.number().int().min(1).max(100_000_000).optional(), steps: z.number().int().min(1).max(1_000_000_000).optional(), period: z.enum(["1h", "1d"]) })
  .strict()
  .refine((budget) => budget.runs !== undefined || budget.steps !== undefined, "a budget needs `runs`, `steps` or both");
export type Budget = z.output<typeof budgetSchema>;

/** The flow-control options of a function's config (all optional; only functions that ask pay). */
export const flowConfigSchema = {
  rateLimit: rateLimitSchema.optional(),
  throttle: throttleSchema.optional(),
  debounce: debounceSchema.optional(),
  batchEvents: batchEventsSchema.optional(),
  idempotency: z.string().min(1).max(1024).optional(),
  singleton: singletonSchema.optional(),
  concurrency: concurrencySchema.optional(),
  priority: prioritySchema.optional(),
  budget: budgetSchema.optional(),
};

/** A function's flow control, with its key expressions compiled. */
export interface FlowControl {
  rateLimit?: RateLimit & { keyOf: KeyOf };
  throttle?: Throttle & { keyOf: KeyOf };
  debounce?: Debounce & { keyOf: KeyOf };
  batchEvents?: BatchEvents & { keyOf: KeyOf };
  idempotency?: { keyOf: KeyOf };
  singleton?: Singleton & { keyOf: KeyOf };
  /** Limits on runs executing at once: checked by the run itself at each invocation, not at dispatch. */
  concurrency?: (ConcurrencyLimit & { keyOf: KeyOf })[];
  /** Seconds a run waiting for a concurrency slot moves ahead of (positive) or behind others. */
  priorityOf?: (event: StoredEvent) => number;
  /** Runs and steps per hour or day, past which the function is paused: checked at each run's start. */
  budget?: Budget & { periodMs: number };
}

/**
 * The key an event falls under for one option ("" without a key expression). A string value is
 * its own key; any other value (a number, a boolean, null, a list or a map) is its JSON after a NUL,
 * and a missing field is MISSING_KEY, so `1` and `"1"`, or null, `"null"` and absence, never share one.
 */
export type KeyOf = (event: StoredEvent) => string;

/** The key of an event whose key expression names a field it lacks (or fails on it). */
export const MISSING_KEY = "\u0000missing";

/** Compiles a function's flow options; throws with the function id and expression for a bad key. */
export function compileFlowControl(options: { [K in keyof typeof flowConfigSchema]?: z.output<(typeof flowConfigSchema)[K]> }, owner: string): FlowControl {
  const keyed = <T extends { key?: string }>(option: T | undefined, name: string) =>
    option ? { ...option, keyOf: compileKey(option.key, `${owner} ${name}.key`) } : undefined;
  const flow: FlowControl = {};
  const rateLimit = keyed(options.rateLimit, "rateLimit");
  const throttle = keyed(options.throttle, "throttle");
  const debounce = keyed(options.debounce, "debounce");
  const batchEvents = keyed(options.batchEvents, "batchEvents");
  if (rateLimit) flow.rateLimit = rateLimit;
  if (throttle) flow.throttle = throttle;
  if (debounce) flow.debounce = debounce;
  if (batchEvents) flow.batchEvents = batchEvents;
  if (options.idempotency) flow.idempotency = { keyOf: compileKey(options.idempotency, `${owner} idempotency`) };
  const singleton = keyed(options.singleton, "singleton");
  if (singleton) flow.singleton = singleton;
  if (options.concurrency) flow.concurrency = options.concurrency.map((limit, i) => ({ ...limit, keyOf: compileKey(limit.key, `${owner} concurrency[${i}].key`) }));
  if (options.priority) {
    const expression = compileExpression(options.priority.run, `${owner} priority.run`);
    flow.priorityOf = (event) => {
      try {
        const seconds = Number(expression({ event }));
        return Number.isFinite(seconds) ? Math.max(-600, Math.min(600, seconds)) : 0;
      } catch {
        return 0;
      }
    };
  }
  if (options.budget) flow.budget = { ...options.budget, periodMs: BUDGET_PERIODS[options.budget.period] };
  if (flow.debounce && flow.batchEvents) throw new TypeError(`${owner}: debounce and batchEvents cannot be combined`);
  return flow;
}

function compileKey(source: string | undefined, owner: string): KeyOf {
  if (!source) return () => "";
  const expression: Expression = compileExpression(source, owner);
  return (event) => {
    try {
      const value = expression({ event });
      return typeof value === "string" ? value : `\u0000${JSON.stringify(value ?? null)}`;
    } catch {
      // The expression fails on this event: a missing field.
      return MISSING_KEY;
    }
  };
}

/**
 * The generic cell rate algorithm, for rate limits and throttles (as Inngest's): starts are spaced
 * `period / limit` apart, and `burst` of them may come at once (a throttle's `limit + burst`, a
 * rate limit's `limit`). `tat` is the theoretical arrival time of
 * the next start. Answers when a start asked for at `now` may happen, and the `tat` after it.
 *
 * @example
 * gcra({ tat: 0, now: 1000, limit: 10, period: 60_000, burst: 1 }); // { startAt: 1000, tat: 7000 }
 */
export function gcra({ tat, now, limit, period, burst }: { tat: number; now: number; limit: number; period: number; burst: number }): { startAt: number; tat: number } {
  const interval = period / limit;
  const startAt = Math.max(now, tat - (burst - 1) * interval);
  return { startAt, tat: Math.max(tat, startAt) + interval };
}
