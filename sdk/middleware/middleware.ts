// Inngest v4's middleware: classes extending Middleware.BaseMiddleware, each hook optional.
// The shapes are Inngest's (inngest/components/middleware/middleware.d.ts); stack.ts runs them.
import type { EventPayload } from "../event.ts";
import type { HandlerContext } from "../run.ts";
import type { SerializedError } from "../types.ts";

type MaybePromise<T> = T | Promise<T>;

/** The function a hook is told about, in the shape of Inngest's `InngestFunction` (`fn.id()`, `fn.name`, `fn.opts`). */
export interface MiddlewareFunction {
  id(prefix?: string): string;
  readonly name: string;
  readonly opts: { readonly id: string; readonly name?: string } & Readonly<Record<string, unknown>>;
}

// eslint-disable-next-line @typescript-eslint/no-namespace
export namespace Middleware {
  /** The context a handler receives (before middleware adds to it). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export type Context = HandlerContext<Record<string, any>>;
  /** The kind of step, as Inngest names them (an open union). */
  export type StepType = "fetch" | "group.experiment" | "invoke" | "realtime.publish" | "run" | "sendEvent" | "sleep" | "waitForEvent" | (string & {});
  export interface StepInfo {
    /** The stored id: the SHA-1 of the step's id (with `:n` for repeats). */
    hashedId: string;
    input?: unknown[];
    /** True when the step's result comes from the run's stored state, not from running it now. */
    memoized: boolean;
    options: { id: string; name?: string };
    stepType: StepType;
  }
  export type MemoizedStep = { type: "data"; data: unknown } | { type: "error"; error: SerializedError };
  export interface TransformFunctionInputArgs {
    ctx: Context;
    readonly fn: MiddlewareFunction;
    /** The run's stored results by hashed step id. */
    steps: Record<string, MemoizedStep>;
  }
  export interface TransformSendEventArgs {
    events: EventPayload[];
    readonly fn: MiddlewareFunction | null;
  }
  export interface WrapFunctionHandlerArgs {
    readonly ctx: Context;
    readonly fn: MiddlewareFunction;
    readonly next: () => Promise<unknown>;
  }
  export interface WrapStepArgs {
    readonly ctx: Context;
    readonly fn: MiddlewareFunction;
    readonly next: () => Promise<unknown>;
    readonly stepInfo: Readonly<StepInfo>;
  }
  export type WrapStepHandlerArgs = WrapStepArgs;
  export interface WrapSendEventArgs {
    readonly events: readonly EventPayload[];
    readonly fn: MiddlewareFunction | null;
    readonly next: () => Promise<{ ids: string[] }>;
  }
  export interface OnRunArgs {
    readonly ctx: Context;
    readonly fn: MiddlewareFunction;
  }
  export type OnRunStartArgs = OnRunArgs;
  export type OnMemoizationEndArgs = OnRunArgs;
  export interface OnRunCompleteArgs extends OnRunArgs {
    readonly output: unknown;
  }
  export interface OnRunErrorArgs extends OnRunArgs {
    readonly error: Error;
    /** False when the function will be retried. */
    readonly isFinalAttempt: boolean;
  }
  export interface OnStepStartArgs extends OnRunArgs {
    readonly stepInfo: Readonly<StepInfo>;
  }
  export interface OnStepCompleteArgs extends OnStepStartArgs {
    readonly output: unknown;
  }
  export interface OnStepErrorArgs extends OnStepStartArgs {
    readonly error: Error;
    /** False when the step will be retried. */
    readonly isFinalAttempt: boolean;
  }
  export interface OnRegisterArgs {
    readonly client: unknown;
    readonly fn: MiddlewareFunction | null;
  }

  /**
   * The base of a middleware: override the hooks you need. A fresh instance serves each
   * invocation of a run (and each `client.send`), as Inngest makes one per request.
   *
   * @example
   * class Timing extends Middleware.BaseMiddleware {
   *   readonly id = "timing";
   *   override async wrapStep({ next, stepInfo }: Middleware.WrapStepArgs) {
   *     const start = Date.now();
   *     try { return await next(); } finally { if (!stepInfo.memoized) console.log(stepInfo.options.id, Date.now() - start); }
   *   }
   * }
   */
  export abstract class BaseMiddleware {
    readonly client: unknown;
    /** Names the middleware in logs. */
    abstract readonly id: string;

    constructor({ client }: { client: unknown }) {
      this.client = client;
    }

    /** Once, when the class is given to a client (`fn: null`) or a function. */
    static onRegister?(args: OnRegisterArgs): void;

    // Sending events, in an invocation (step.sendEvent) or outside one (client.send).
    /** Before events are sent (step.sendEvent, client.send): return the arg with changed `events`. */
    transformSendEvent?(arg: TransformSendEventArgs): MaybePromise<TransformSendEventArgs>;
    /** Around each send of events; `next()` answers their ids. */
    wrapSendEvent?(args: WrapSendEventArgs): Promise<{ ids: string[] }>;

    // An invocation's hooks, roughly in the order it meets them.
    /** Once per invocation, before the handler: return the arg with a changed `ctx` (dependency injection). */
    transformFunctionInput?(arg: TransformFunctionInputArgs): MaybePromise<TransformFunctionInputArgs>;
    /** Once per run, on its very first invocation (nothing stored, first attempt). */
    onRunStart?(arg: OnRunStartArgs): MaybePromise<void>;
    /** Around the handler, once per invocation; `next()` settles only if the handler ends in this invocation. */
    wrapFunctionHandler?(args: WrapFunctionHandlerArgs): Promise<unknown>;
    /** Around every step call of every kind, once per invocation; what it returns is what the handler gets. */
    wrapStep?(args: WrapStepArgs): Promise<unknown>;
    /** Once per invocation, when every stored step has been replayed (or a new step was reached first). */
    onMemoizationEnd?(arg: OnMemoizationEndArgs): MaybePromise<void>;
    /** Before each attempt of a step that runs code here (run, sendEvent, fetch, an experiment's pick); never for a memoized step. */
    onStepStart?(arg: OnStepStartArgs): MaybePromise<void>;
    /** Around each attempt of a step's code (the kinds of onStepStart). */
    wrapStepHandler?(args: WrapStepHandlerArgs): Promise<unknown>;
    /** After such an attempt succeeds. */
    onStepComplete?(arg: OnStepCompleteArgs): MaybePromise<void>;
    /** After such an attempt fails. */
    onStepError?(arg: OnStepErrorArgs): MaybePromise<void>;
    /** When the handler returns. */
    onRunComplete?(arg: OnRunCompleteArgs): MaybePromise<void>;
    /** When the handler throws. */
    onRunError?(arg: OnRunErrorArgs): MaybePromise<void>;
  }

  /** A middleware class, as `middleware: [...]` takes it. */
  export type Class = (new (args: { client: unknown }) => BaseMiddleware) & { onRegister?(args: OnRegisterArgs): void };
}

/** What the handler's `ctx` gains from a middleware: the keys its `transformFunctionInput` adds (v4), or its `transformInput`'s `ctx` (v3). */
type CtxExtension<T> = T extends Middleware.Class
  ? InstanceType<T> extends { transformFunctionInput(arg: Middleware.TransformFunctionInputArgs): MaybePromise<{ ctx: infer TCtx }> }
    ? Omit<TCtx, keyof Middleware.Context>
    : {}
  : T extends { init(...args: never[]): infer TRegistration }
    ? V3CtxExtension<Awaited<TRegistration>>
    : {};

// v3: init() → onFunctionRun() → transformInput() → { ctx }.
type V3CtxExtension<TRegistration> = TRegistration extends { onFunctionRun?(...args: never[]): infer THooks }
  ? Awaited<THooks> extends { transformInput?(...args: never[]): infer TInput }
    ? Awaited<TInput> extends { ctx?: infer TCtx }
      ? TCtx extends object ? Omit<TCtx, keyof Middleware.Context> : {}
      : {}
    : {}
  : {};

/** What the handler's `ctx` gains from a list of middleware (v4 classes and v3 InngestMiddlewares). */
export type MiddlewareCtxExtensions<TMiddleware extends readonly unknown[] | undefined> = TMiddleware extends readonly [infer First, ...infer Rest extends readonly unknown[]]
  ? CtxExtension<First> & MiddlewareCtxExtensions<Rest>
  : {};
