import { z } from "zod";
import type { Handler } from "./driver.ts";
import type { StoredEvent } from "./event.ts";
import { nameSchema } from "./event.ts";
import { compileExpression, type Expression } from "./expression.ts";
import type { StepTools } from "./step.ts";
import type { Logger, SerializedError } from "./types.ts";

/** The internal event a failed run sends; `onFailure` handlers are triggered by it. */
export const FUNCTION_FAILED_EVENT = "inngest/function.failed";

/** An event trigger: an exact name or a `prefix/*` wildcard, and an optional CEL `if` over `event`. */
export const triggerSchema = z.object({ event: nameSchema, if: z.string().min(1).optional() }).strict();
export type Trigger = z.infer<typeof triggerSchema>;

const handlerSchema = z.custom<(...args: never[]) => unknown>((value) => typeof value === "function", "must be a function");

/**
 * A function's configuration. Options this version does not implement yet (flow control, crons,
 * timeouts) are rejected by name rather than silently ignored.
 */
export const functionConfigSchema = z
  .object({
    id: nameSchema,
    name: z.string().min(1).max(255).optional(),
    retries: z.number().int().min(0).max(20).default(4),
    onFailure: handlerSchema.optional(),
  })
  .strict();

/** The config a user writes. */
export type FunctionConfig<TData extends object> = Omit<z.input<typeof functionConfigSchema>, "onFailure"> & {
  /** Runs as its own run when this function fails for good, with the failure event and error. */
  onFailure?: FailureHandler<TData>;
};

/** The `data` of an `inngest/function.failed` event. */
export interface FailureEventData<TData extends object = Record<string, unknown>> {
  function_id: string;
  run_id: string;
  error: SerializedError;
  event: StoredEvent<TData>;
}

/** What an `onFailure` handler receives: the failure event, the failed run's error, and steps. */
export type FailureHandler<TData extends object> = (ctx: {
  event: StoredEvent<FailureEventData<TData>>;
  error: Error;
  step: StepTools;
  runId: string;
  attempt: number;
  logger: Logger;
}) => unknown;

/** A trigger with its `if` compiled. */
interface CompiledTrigger {
  event: string;
  if?: Expression;
}

/**
 * A function registered with `createFunction`: its validated config, triggers and handler.
 */
export class StepflareFunction {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly triggers: Trigger[];
  readonly handler: Handler<object, unknown>;
  /** The `onFailure` handler as a function of its own (id `<id>-failure`), if any. */
  readonly failureFunction?: StepflareFunction;
  private readonly compiled: CompiledTrigger[];

  constructor(config: unknown, triggers: unknown, handler: unknown) {
    const parsed = parseOrThrow(functionConfigSchema, config, `config of function ${JSON.stringify((config as { id?: unknown } | null)?.id)}`);
    const owner = `function "${parsed.id}"`;
    const list = parseOrThrow(z.array(triggerSchema).min(1).max(10), Array.isArray(triggers) ? triggers : [triggers], `${owner} triggers`);
    if (typeof handler !== "function") throw new TypeError(`${owner}: the handler must be a function`);
    this.id = parsed.id;
    this.name = parsed.name ?? parsed.id;
    this.retries = parsed.retries;
    this.triggers = list;
    this.handler = handler as Handler<object, unknown>;
    this.compiled = list.map((t) => ({ event: t.event, ...(t.if ? { if: compileExpression(t.if, owner) } : {}) }));
    if (parsed.onFailure) {
      const onFailure = parsed.onFailure as unknown as FailureHandler<object>;
      this.failureFunction = new StepflareFunction(
        { id: `${parsed.id}-failure`, name: `${this.name} (failure)`, retries: parsed.retries },
        { event: FUNCTION_FAILED_EVENT, if: `event.data.function_id == ${JSON.stringify(parsed.id)}` },
        (ctx: Parameters<Handler<FailureEventData, unknown>>[0]) =>
          onFailure({ ...ctx, error: rebuildError(ctx.event.data.error) } as Parameters<FailureHandler<object>>[0]),
      );
    }
  }

  /** True when `event` fires one of this function's triggers. A failing `if` is a non-match. */
  matches(event: StoredEvent): boolean {
    return this.compiled.some((trigger) => namesMatch(trigger.event, event.name) && (!trigger.if || evaluatesTrue(trigger.if, event)));
  }
}

function namesMatch(pattern: string, name: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

function evaluatesTrue(expression: Expression, event: StoredEvent): boolean {
  try {
    return expression({ event }) === true;
  } catch {
    // An expression that reads a missing field does not match, as in Inngest.
    return false;
  }
}

function rebuildError(serialized: SerializedError): Error {
  const error = new Error(serialized.message);
  error.name = serialized.name;
  if (serialized.stack) error.stack = serialized.stack;
  return error;
}

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new TypeError(`invalid ${what}: ${issues}`);
}
