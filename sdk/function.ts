import { z } from "zod";
import type { Handler } from "./driver.ts";
import type { StoredEvent } from "./event.ts";
import { nameSchema } from "./event.ts";
import { toMilliseconds } from "./duration.ts";
import { parseCron, type CronSchedule } from "./cron.ts";
import { compileExpression, type Expression } from "./expression.ts";
import { compileFlowControl, flowConfigSchema, type FlowControl } from "./flow.ts";
import type { StepTools } from "./step.ts";
import { EventType } from "./eventType.ts";
import { deserializeError } from "./errors/serialize.ts";
import type { Logger, SerializedError } from "./types.ts";
import type { Middleware, MiddlewareFunction } from "./middleware/middleware.ts";
import type { MiddlewareSetup } from "./middleware/stack.ts";
import { InngestMiddleware, middlewareClasses, type MiddlewareEntry } from "./middleware/v3.ts";

/** Default and largest `stepTimeout`: a Durable Object alarm may run for at most 15 minutes. */
const DEFAULT_STEP_TIMEOUT = "10m";
/** How long a buffered step result waits for others before it is written alone (`checkpointing.maxInterval`). */
const DEFAULT_BUFFER_INTERVAL_MS = 1_000;
const MAX_STEP_TIMEOUT_MS = 15 * 60 * 1000;

/** The internal event a failed run sends; `onFailure` handlers are triggered by it. */
export const FUNCTION_FAILED_EVENT = "inngest/function.failed";

/** The internal event a cancelled run sends; `onCancel` handlers are triggered by it. */
export const FUNCTION_CANCELLED_EVENT = "inngest/function.cancelled";

/** The internal event every run's end sends (Inngest's), with its `result` or `error`: only when a function listens for it. */
export const FUNCTION_FINISHED_EVENT = "inngest/function.finished";

/** The event a scheduled run receives (Inngest's): `data.cron` is the trigger that fired. */
export const SCHEDULED_TIMER_EVENT = "inngest/scheduled.timer";

/** An event trigger: an exact name or a `prefix/*` wildcard, and an optional CEL `if` over `event`. */
export const eventTriggerSchema = z.object({ event: nameSchema, if: z.string().min(1).optional() }).strict();
/** A cron trigger: five fields or a nickname, with Inngest's optional `TZ=<zone> ` prefix. */
export const cronTriggerSchema = z.object({ cron: z.string().min(1).max(255) }).strict();
export const triggerSchema = z.union([eventTriggerSchema, cronTriggerSchema]);
export type EventTrigger = z.infer<typeof eventTriggerSchema>;
export type CronTrigger = z.infer<typeof cronTriggerSchema>;
export type Trigger = EventTrigger | CronTrigger;

const durationSchema = z.union([z.number().nonnegative(), z.string().min(1)]).transform((value, ctx) => {
  try {
    return toMilliseconds(value);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

/** One `cancelOn` entry: an event that cancels the run, matched as a wait is (DESIGN "Waits"). */
const cancelOnSchema = z
  .object({ event: nameSchema, match: z.string().min(1).max(255).optional(), if: z.string().min(1).max(4096).optional(), timeout: durationSchema.optional() })
  .strict();
export type CancelOn = z.output<typeof cancelOnSchema>;

const handlerSchema = z.custom<(...args: never[]) => unknown>((value) => typeof value === "function", "must be a function");

/**
 * A function's configuration. Options this version does not implement yet (flow control) are
 * rejected by name rather than silently ignored.
 */
export const functionConfigSchema = z
  .object({
    id: nameSchema,
    name: z.string().min(1).max(255).optional(),
    retries: z.number().int().min(0).max(20).default(4),
    /**
     * How long one step body (or the handler's own code between steps) may run before it fails
     * and is retried: a Stepflare option, like Workflows' step timeout (default 10 minutes).
     */
    stepTimeout: z
      .union([z.number(), z.string()])
      .default(DEFAULT_STEP_TIMEOUT)
      .transform((value, ctx) => {
        try {
          const ms = toMilliseconds(value);
          if (ms >= 1 && ms <= MAX_STEP_TIMEOUT_MS) return ms;
          ctx.addIssue({ code: "custom", message: `stepTimeout must be between 1 ms and 15 minutes, got ${ms} ms` });
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
        }
        return z.NEVER;
      }),
    /**
     * Inngest v4's option, as Stepflare reads it: `bufferedSteps` above 1 stores up to that many
     * consecutive step results in one write (at most `maxInterval` apart), for fewer rows written;
     * a crash re-runs the steps not yet written. `true`, `false` and `maxRuntime` change nothing:
     * by default every step is one durable write.
     */
    checkpointing: z
      .union([
        z.boolean(),
        z
          .object({
            bufferedSteps: z.number().int().min(1).max(100).optional(),
            maxInterval: durationSchema.optional(),
            maxRuntime: z.union([z.number(), z.string(), z.record(z.string(), z.number())]).optional(),
          })
          .strict(),
      ])
      .optional(),
    onFailure: handlerSchema.optional(),
    /** Middleware for this function's runs, after the client's: v4 classes and v3 InngestMiddlewares. */
    middleware: z
      .array(z.custom<MiddlewareEntry>((value) => typeof value === "function" || value instanceof InngestMiddleware, "must be a middleware class (extends Middleware.BaseMiddleware) or a new InngestMiddleware(...)"))
      .max(100)
      .optional(),
    /** Events that cancel a run of this function while it runs, sleeps or waits. */
    cancelOn: z.array(cancelOnSchema).min(1).max(10).optional(),
    /** `start`: cancel a run not started this long after its event; `finish`: not finished this long after it started. */
    timeouts: z.object({ start: durationSchema.optional(), finish: durationSchema.optional() }).strict().optional(),
    /** Runs as its own run when a run of this function is cancelled, with the cancellation event. */
    onCancel: handlerSchema.optional(),
    ...flowConfigSchema,
  })
  .strict();

/** The config a user writes. */
export type FunctionConfig<TData extends object> = Omit<z.input<typeof functionConfigSchema>, "onFailure" | "onCancel" | "middleware"> & {
  /** Middleware for this function's runs, after the client's: v4 classes and v3 InngestMiddlewares. */
  middleware?: readonly MiddlewareEntry[];
  /** Runs as its own run when this function fails for good, with the failure event and error. */
  onFailure?: FailureHandler<TData>;
  /** Runs as its own run when a run of this function is cancelled, with the cancellation event. */
  onCancel?: CancelHandler<TData>;
};

/** Why a run was cancelled, as its `inngest/function.cancelled` event says. */
export type CancelReason =
  | { type: "api" }
  | { type: "event"; event: StoredEvent }
  | { type: "timeout"; timeout: "start" | "finish" }
  | { type: "bulk"; cancellation_id: string }
  | { type: "singleton"; run_id: string };

/** The `data` of an `inngest/function.cancelled` event. */
export interface CancelEventData<TData extends object = Record<string, unknown>> {
  function_id: string;
  run_id: string;
  event: StoredEvent<TData>;
  reason: CancelReason;
}

/** What the handlers of a run's end (onFailure, onCancel) receive beside their event: steps, their own run's id and attempt, a logger. */
interface EndHandlerContext {
  step: StepTools;
  runId: string;
  attempt: number;
  logger: Logger;
}

/** What an `onCancel` handler receives: the cancellation event, its reason, and steps. */
export type CancelHandler<TData extends object> = (ctx: EndHandlerContext & { event: StoredEvent<CancelEventData<TData>>; reason: CancelReason }) => unknown;

/** The `data` of an `inngest/function.failed` event. */
export interface FailureEventData<TData extends object = Record<string, unknown>> {
  function_id: string;
  run_id: string;
  error: SerializedError;
  event: StoredEvent<TData>;
}

/** What an `onFailure` handler receives: the failure event, the failed run's error, and steps. */
export type FailureHandler<TData extends object> = (ctx: EndHandlerContext & { event: StoredEvent<FailureEventData<TData>>; error: Error }) => unknown;

/** Who defines a function: the client (createFunction passes itself and its middleware). */
export interface FunctionOwner {
  client?: unknown;
  middleware?: readonly Middleware.Class[];
}

/** A trigger with its `if` compiled. */
interface CompiledTrigger {
  event: string;
  if?: Expression;
  source?: string;
}

/**
 * A function registered with `createFunction`: its validated config, triggers and handler.
 */
export class StepflareFunction {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly stepTimeoutMs: number;
  /** Consecutive step results stored in one write (`checkpointing.bufferedSteps`), and how long the first may wait; none: one write a step. */
  readonly bufferedSteps?: { maxSteps: number; maxIntervalMs: number };
  readonly triggers: Trigger[];
  /** The cron triggers, parsed (DESIGN "Cron and the tick"). */
  readonly crons: CronSchedule[];
  readonly handler: Handler<object, unknown>;
  /** The `onFailure` handler as a function of its own (id `<id>-failure`), if any. */
  readonly failureFunction?: StepflareFunction;
  /** The `onCancel` handler as a function of its own (id `<id>-cancel`), if any. */
  readonly cancelFunction?: StepflareFunction;
  readonly cancelOn: CancelOn[];
  /** `timeouts`, in ms. */
  readonly timeouts: { start?: number; finish?: number };
  /** Flow control, with its keys compiled (DESIGN "Flow control"). */
  readonly flow: FlowControl;
  /** True when a run's start goes through flow control: only such functions pay for it. */
  readonly hasFlowControl: boolean;
  /** The options that shape its runs, as validated (durations in ms), for the REST API. */
  readonly settings: Record<string, unknown>;
  /** The `eventType`s among its triggers. */
  readonly eventTypes: EventType[];
  /** Its middleware: the client's, then its own. */
  readonly middleware: readonly Middleware.Class[];
  /** The client that created it, if any (middleware instances are given it). */
  readonly client?: unknown;
  private readonly compiled: CompiledTrigger[];

  constructor(config: unknown, triggers: unknown, handler: unknown, by: FunctionOwner = {}) {
    const parsed = parseOrThrow(functionConfigSchema, config, `config of function ${JSON.stringify((config as { id?: unknown } | null)?.id)}`);
    const owner = `function "${parsed.id}"`;
    const given = (Array.isArray(triggers) ? triggers : [triggers]) as unknown[];
    // Inngest v4's event types stand for the trigger `{ event: name }`; their schemas check what is sent.
    this.eventTypes = given.filter((t): t is EventType => t instanceof EventType);
    const list = parseOrThrow(z.array(triggerSchema).min(1).max(10), given.map((t) => (t instanceof EventType ? { event: t.name } : t)), `${owner} triggers`);
    if (typeof handler !== "function") throw new TypeError(`${owner}: the handler must be a function`);
    this.id = parsed.id;
    this.name = parsed.name ?? parsed.id;
    this.retries = parsed.retries;
    this.stepTimeoutMs = parsed.stepTimeout;
    const checkpointing = typeof parsed.checkpointing === "object" ? parsed.checkpointing : {};
    if ((checkpointing.bufferedSteps ?? 1) > 1) this.bufferedSteps = { maxSteps: checkpointing.bufferedSteps!, maxIntervalMs: checkpointing.maxInterval ?? DEFAULT_BUFFER_INTERVAL_MS };
    this.triggers = list;
    this.handler = handler as Handler<object, unknown>;
    this.compiled = list.flatMap((t) => ("event" in t ? [{ event: t.event, ...(t.if ? { if: compileExpression(t.if, owner), source: t.if } : {}) }] : []));
    this.crons = list.flatMap((t) => ("cron" in t ? [parseCron(t.cron, owner)] : []));
    this.cancelOn = parsed.cancelOn ?? [];
    for (const entry of this.cancelOn) if (entry.if) compileExpression(entry.if, `${owner} cancelOn`);
    this.timeouts = parsed.timeouts ?? {};
    this.flow = compileFlowControl(parsed, owner);
    // Concurrency and priority act when a run executes, not when it is dispatched.
    this.hasFlowControl = Object.keys(this.flow).some((option) => option !== "concurrency" && option !== "priorityOf");
    this.client = by.client;
    const own = middlewareClasses(parsed.middleware ?? [], { client: by.client ?? null, fnLevel: true }, `${owner} middleware`);
    this.middleware = [...(by.middleware ?? []), ...own];
    const { id: _id, name: _name, onFailure: _onFailure, onCancel: _onCancel, middleware: _middleware, ...settings } = parsed;
    this.settings = settings;
    for (const Class of own) Class.onRegister?.({ client: by.client ?? null, fn: this.middlewareView() });
    // onFailure and onCancel run as functions of their own, triggered by this function's engine events.
    const companion = (suffix: string, label: string, event: string, handler: Handler<object, unknown>) =>
      new StepflareFunction(
        { id: `${parsed.id}-${suffix}`, name: `${this.name} (${label})`, retries: parsed.retries, stepTimeout: parsed.stepTimeout },
        { event, if: `event.data.function_id == ${JSON.stringify(parsed.id)}` },
        handler,
        // Its own runs go through the same middleware, as Inngest's onFailure handlers do.
        { client: by.client, middleware: this.middleware },
      );
    if (parsed.onFailure) {
      const onFailure = parsed.onFailure as unknown as FailureHandler<object>;
      this.failureFunction = companion("failure", "failure", FUNCTION_FAILED_EVENT, (ctx) =>
        onFailure({ ...ctx, error: deserializeError((ctx.event.data as FailureEventData).error) } as Parameters<FailureHandler<object>>[0]),
      );
    }
    if (parsed.onCancel) {
      const onCancel = parsed.onCancel as unknown as CancelHandler<object>;
      this.cancelFunction = companion("cancel", "cancel", FUNCTION_CANCELLED_EVENT, (ctx) =>
        onCancel({ ...ctx, reason: (ctx.event.data as CancelEventData).reason } as Parameters<CancelHandler<object>>[0]),
      );
    }
  }

  /** What a run of this function gives the driver for its middleware (undefined without any). */
  middlewareSetup(): MiddlewareSetup | undefined {
    return this.middleware.length ? { classes: this.middleware, client: this.client ?? null, fn: this.middlewareView() } : undefined;
  }

  /** This function as middleware hooks see it: Inngest's `fn.id()`, `fn.name`, `fn.opts`. */
  private middlewareView(): MiddlewareFunction {
    const { id, name, settings } = this;
    return { id: (prefix?: string) => (prefix ? `${prefix}-${id}` : id), name, opts: { ...settings, id, name } };
  }

  /**
   * True when `event` fires one of this function's triggers. A failing `if` is a non-match, and
   * `logger` (the engine's, tagged with the event) says why.
   */
  matches(event: StoredEvent, logger?: Logger): boolean {
    return this.compiled.some((trigger) => namesMatch(trigger.event, event.name) && (!trigger.if || this.evaluatesTrue(trigger, event, logger)));
  }

  private evaluatesTrue(trigger: CompiledTrigger, event: StoredEvent, logger?: Logger): boolean {
    try {
      return trigger.if!({ event }) === true;
    } catch (err) {
      // An expression that fails on this event (a missing field, a type mismatch) does not match it;
      // say why, since the event then starts no run of this function.
      logger?.warn("trigger expression failed; the event does not match", {
        function_id: this.id,
        expression: trigger.source,
        error: err instanceof Error ? err.message.split("\n")[0] : String(err),
      });
      return false;
    }
  }
}

function namesMatch(pattern: string, name: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new TypeError(`invalid ${what}: ${issues}`);
}
