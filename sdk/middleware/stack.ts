import type { EventPayload } from "../event.ts";
import type { StepRecord } from "../run.ts";
import type { Logger } from "../types.ts";
import { serializeError } from "../types.ts";
import type { Middleware, MiddlewareFunction } from "./middleware.ts";

/** What a run's middleware needs: the classes (the client's, then the function's), the client, the function. */
export interface MiddlewareSetup {
  classes: readonly Middleware.Class[];
  client: unknown;
  fn: MiddlewareFunction;
}

/**
 * A hook the stack calls when an invocation ends, whatever its outcome: not one of v4's, it is
 * where v3's middleware (v3.ts) runs `afterExecution` and `beforeResponse`.
 */
export const INVOCATION_END = Symbol("stepflare.invocationEnd");

type Instance = Middleware.BaseMiddleware & { [INVOCATION_END]?(): Promise<void> };
type Hooks = Required<Pick<Instance, Exclude<keyof Instance, "id" | "client">>>;
type Observer = "onRunStart" | "onRunComplete" | "onRunError" | "onMemoizationEnd" | "onStepStart" | "onStepComplete" | "onStepError";

/**
 * The middleware of one invocation: fresh instances of the classes, and the hooks run in the
 * order the classes were given (the first one outermost for the `wrap*` hooks). The driver calls it.
 */
export class MiddlewareStack {
  private readonly instances: Instance[];
  /** The handler's context once transformFunctionInput made it: what every later hook is given. */
  ctx!: Middleware.Context;

  constructor(
    private readonly setup: MiddlewareSetup,
    private readonly logger: Logger,
  ) {
    this.instances = setup.classes.map((Class) => new Class({ client: setup.client }));
  }

  /** Runs every transformFunctionInput in order; the last one's ctx is the handler's. */
  async transformFunctionInput(ctx: Middleware.Context, steps: Record<string, Middleware.MemoizedStep>): Promise<Middleware.Context> {
    let arg: Middleware.TransformFunctionInputArgs = { ctx, fn: this.setup.fn, steps };
    for (const m of this.instances) if (m.transformFunctionInput) arg = await m.transformFunctionInput(arg);
    this.ctx = arg.ctx;
    return arg.ctx;
  }

  /**
   * Before the handler: transformFunctionInput with the run's stored results, then onRunStart on
   * the run's very first invocation. Gives the handler's context, its `attempt` read from `attempt`.
   */
  async startHandler<TCtx extends object>(ctx: TCtx, stored: Iterable<StepRecord>, isFirst: () => boolean, attempt: () => number): Promise<TCtx> {
    const steps: Record<string, Middleware.MemoizedStep> = {};
    for (const step of stored) {
      if (step.status === "completed") steps[step.id] = { type: "data", data: structuredClone(step.output) };
      else if (step.status === "failed" && step.error) steps[step.id] = { type: "error", error: step.error };
    }
    const transformed = (await this.transformFunctionInput(ctx as unknown as Middleware.Context, steps)) as unknown as TCtx;
    // A middleware that spreads the context ({ ...ctx, db }) reads `attempt` once; keep it live.
    const descriptor = Object.getOwnPropertyDescriptor(transformed, "attempt");
    if (transformed !== ctx && descriptor && "value" in descriptor) {
      Object.defineProperty(transformed, "attempt", { get: attempt, enumerable: true, configurable: true });
    }
    if (isFirst()) await this.notify("onRunStart", {});
    return transformed;
  }

  /** Tells every middleware that has the hook; a hook that throws is logged, and the run goes on. */
  async notify<THook extends Observer>(hook: THook, arg: Omit<Parameters<Hooks[THook]>[0], "ctx" | "fn">): Promise<void> {
    for (const m of this.instances) {
      const fn = m[hook] as ((arg: unknown) => unknown) | undefined;
      if (!fn) continue;
      try {
        await fn.call(m, { ctx: this.ctx, fn: this.setup.fn, ...arg });
      } catch (err) {
        this.logger.warn(`middleware "${m.id}" failed in ${hook}; going on`, { error: serializeError(err).message });
      }
    }
  }

  /** The invocation is over: the middleware that asked to hear of it hear it; a hook that throws is logged. */
  async endInvocation(): Promise<void> {
    for (const m of this.instances) {
      try {
        await m[INVOCATION_END]?.();
      } catch (err) {
        this.logger.warn(`middleware "${m.id}" failed at the invocation's end; going on`, { error: serializeError(err).message });
      }
    }
  }

  wrapFunctionHandler(next: () => Promise<unknown>): Promise<unknown> {
    return this.compose("wrapFunctionHandler", { ctx: this.ctx, fn: this.setup.fn }, next);
  }

  /** Around a step call (any kind): its first layer is called now, so steps it calls take ids in call order. */
  wrapStep(stepInfo: Middleware.StepInfo, next: () => Promise<unknown>): Promise<unknown> {
    return this.compose("wrapStep", { ctx: this.ctx, fn: this.setup.fn, stepInfo }, next);
  }

  /** One attempt of a step's code: onStepStart, wrapStepHandler around it, then onStepComplete or onStepError. */
  async runStepHandler(stepInfo: Middleware.StepInfo, body: () => unknown, isFinalAttempt: (err: unknown) => boolean): Promise<unknown> {
    await this.notify("onStepStart", { stepInfo });
    try {
      const output = await this.compose("wrapStepHandler", { ctx: this.ctx, fn: this.setup.fn, stepInfo }, async () => body());
      await this.notify("onStepComplete", { stepInfo, output });
      return output;
    } catch (err) {
      await this.notify("onStepError", { stepInfo, error: asError(err), isFinalAttempt: isFinalAttempt(err) });
      throw err;
    }
  }

  /** transformSendEvent in order, then wrapSendEvent around the send. */
  sendEvents(events: EventPayload[], send: (events: EventPayload[]) => Promise<{ ids: string[] }>): Promise<{ ids: string[] }> {
    return sendThrough(this.instances, this.setup.fn, events, send);
  }

  private compose<THook extends "wrapFunctionHandler" | "wrapStep" | "wrapStepHandler">(
    hook: THook,
    arg: Omit<Parameters<Hooks[THook]>[0], "next">,
    last: () => Promise<unknown>,
  ): Promise<unknown> {
    return compose(this.instances, hook, arg, last);
  }
}

/**
 * Sends `events` through the middleware of a client (`client.send`, `fn: null`) or a run: fresh
 * instances, as Inngest makes them per request.
 */
export function sendThroughMiddleware(classes: readonly Middleware.Class[], client: unknown, events: EventPayload[], send: (events: EventPayload[]) => Promise<{ ids: string[] }>) {
  return sendThrough(classes.map((Class) => new Class({ client })), null, events, send);
}

async function sendThrough(instances: Instance[], fn: MiddlewareFunction | null, events: EventPayload[], send: (events: EventPayload[]) => Promise<{ ids: string[] }>): Promise<{ ids: string[] }> {
  let arg: Middleware.TransformSendEventArgs = { events, fn };
  for (const m of instances) if (m.transformSendEvent) arg = await m.transformSendEvent(arg);
  const transformed = arg.events;
  return compose(instances, "wrapSendEvent", { events: transformed, fn }, () => send(transformed)) as Promise<{ ids: string[] }>;
}

/** Calls the hook of each middleware that has it, each one's `next` the next one's, the last `last`. */
function compose(instances: Instance[], hook: "wrapFunctionHandler" | "wrapStep" | "wrapStepHandler" | "wrapSendEvent", arg: object, last: () => Promise<unknown>): Promise<unknown> {
  const layers = instances.filter((m) => typeof m[hook] === "function");
  const at = (i: number): Promise<unknown> => {
    if (i === layers.length) return last();
    const m = layers[i]!;
    try {
      return Promise.resolve((m[hook] as (arg: unknown) => unknown).call(m, { ...arg, next: () => at(i + 1) }));
    } catch (err) {
      return Promise.reject(err);
    }
  };
  return at(0);
}

function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  const { name, message } = serializeError(err);
  return Object.assign(new Error(message), { name });
}
