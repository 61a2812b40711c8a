// Inngest v3's middleware (`new InngestMiddleware({ name, init })`), run as a v4 middleware class
// by the same stack: each v3 hook is called where v4's lifecycle meets the moment v3 documents.
// The shapes are v3's (inngest-js v3, components/InngestMiddleware.ts).
import type { EventPayload } from "../event.ts";
import type { Middleware, MiddlewareFunction } from "./middleware.ts";
import { INVOCATION_END } from "./stack.ts";

type MaybePromise<T> = T | Promise<T>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyRecord = Record<string, any>;

/** A step's result or the function's, as v3's `transformOutput` and `finished` see it. */
export interface V3Result {
  data?: unknown;
  error?: unknown;
}

/** The step a v3 `transformOutput` is called for (absent for the function's own output). */
export interface V3Step {
  name: string;
  displayName: string;
  op: string;
}

/** The hooks v3's `onFunctionRun` returns, all optional. */
export interface V3RunHooks {
  /** Once per request, before the handler: return `{ ctx }` to add to the handler's context. */
  transformInput?(arg: { ctx: AnyRecord; steps: Readonly<{ id: string; data?: unknown; error?: unknown }>[]; fn: MiddlewareFunction; reqArgs: readonly unknown[] }): MaybePromise<{ ctx?: AnyRecord } | undefined | void>;
  beforeMemoization?(): MaybePromise<void>;
  afterMemoization?(): MaybePromise<void>;
  beforeExecution?(): MaybePromise<void>;
  afterExecution?(): MaybePromise<void>;
  /** After a step ran here, and after the function returned or threw: return `{ result }` to change it. */
  transformOutput?(arg: { result: Readonly<V3Result>; step?: Readonly<V3Step> }): MaybePromise<{ result?: Partial<V3Result> } | undefined | void>;
  /** When the function returned or threw (after transformOutput). */
  finished?(arg: { result: Readonly<V3Result> }): MaybePromise<void>;
  /** Last, before the request's answer goes back. */
  beforeResponse?(): MaybePromise<void>;
}

/** The hooks v3's `onSendEvent` returns. */
export interface V3SendHooks {
  transformInput?(arg: { payloads: ReadonlyArray<EventPayload> }): MaybePromise<{ payloads?: EventPayload[] } | undefined | void>;
  transformOutput?(arg: { result: Readonly<{ ids: string[] }> }): MaybePromise<{ result?: AnyRecord } | undefined | void>;
}

/** What v3's `init` returns. */
export interface V3Registration {
  onFunctionRun?(arg: { ctx: Readonly<{ event: EventPayload; runId: string }>; fn: MiddlewareFunction; steps: readonly unknown[]; reqArgs: readonly unknown[] }): MaybePromise<V3RunHooks>;
  onSendEvent?(): MaybePromise<V3SendHooks>;
}

/** v3's middleware options: a name, and `init`, called once per client or function it is given to. */
export interface V3MiddlewareOptions {
  name: string;
  init(arg: { client: unknown; fn?: MiddlewareFunction }): MaybePromise<V3Registration>;
}

/**
 * Inngest v3's middleware. Give it in `middleware: [...]` of the client or of a function, beside v4's
 * middleware classes; its hooks run with v3's lifecycle.
 *
 * @example
 * const logging = new InngestMiddleware({
 *   name: "logging",
 *   init: () => ({
 *     onFunctionRun: ({ fn }) => ({ transformInput: () => ({ ctx: { startedBy: fn.name } }), finished: ({ result }) => console.log(result) }),
 *   }),
 * });
 */
export class InngestMiddleware<TOpts extends V3MiddlewareOptions = V3MiddlewareOptions> {
  readonly name: TOpts["name"];
  readonly init: TOpts["init"];

  constructor({ name, init }: TOpts) {
    if (typeof init !== "function") throw new TypeError(`new InngestMiddleware({ name: ${JSON.stringify(name)} }): init must be a function`);
    this.name = name;
    this.init = init;
  }
}

/**
 * The v4 class that runs `mw`: `init` is called once (lazily, on its first use), `onFunctionRun` once
 * per invocation, `onSendEvent` once per send.
 */
export function v3MiddlewareClass(mw: InngestMiddleware, owner: { client: unknown; fnLevel: boolean }): Middleware.Class {
  let registration: Promise<V3Registration> | undefined;
  const register = (fn: MiddlewareFunction | null) => (registration ??= Promise.resolve(mw.init({ client: owner.client, ...(owner.fnLevel && fn ? { fn } : {}) })));

  return class V3Middleware {
    readonly id = mw.name;
    readonly client: unknown;
    private hooks: V3RunHooks = {};
    // v3 calls each hook but transformOutput at most once per request.
    private readonly called = new Set<keyof V3RunHooks>();

    constructor({ client }: { client: unknown }) {
      this.client = client;
    }

    private async once(hook: "beforeMemoization" | "afterMemoization" | "beforeExecution" | "afterExecution" | "beforeResponse"): Promise<void> {
      if (this.called.has(hook)) return;
      this.called.add(hook);
      await this.hooks[hook]?.();
    }

    private async output(result: V3Result, step?: V3Step): Promise<V3Result> {
      const changed = await this.hooks.transformOutput?.({ result: { ...result }, ...(step ? { step } : {}) });
      return { ...result, ...changed?.result };
    }

    async transformFunctionInput(arg: Middleware.TransformFunctionInputArgs): Promise<Middleware.TransformFunctionInputArgs> {
      const registered = await register(arg.fn);
      const { event, runId } = arg.ctx;
      this.hooks = (await registered.onFunctionRun?.({ ctx: { event, runId }, fn: arg.fn, steps: memoList(arg.steps), reqArgs: [] })) ?? {};
      const changed = await this.hooks.transformInput?.({ ctx: { ...arg.ctx }, steps: memoList(arg.steps), fn: arg.fn, reqArgs: [] });
      // Added to the handler's context, as v3 merges `ctx`; the context stays the same object, so `attempt` stays live.
      if (changed?.ctx) Object.assign(arg.ctx, changed.ctx);
      await this.once("beforeMemoization");
      return arg;
    }

    async onMemoizationEnd(): Promise<void> {
      await this.once("afterMemoization");
      await this.once("beforeExecution");
    }

    async wrapStepHandler({ next, stepInfo }: Middleware.WrapStepHandlerArgs): Promise<unknown> {
      const step: V3Step = { name: stepInfo.options.id, displayName: stepInfo.options.name ?? stepInfo.options.id, op: stepOp(stepInfo.stepType) };
      let result: V3Result;
      try {
        result = await this.output({ data: await next() }, step);
      } catch (error) {
        result = await this.output({ error }, step);
      }
      if (result.error !== undefined) throw result.error;
      return result.data;
    }

    async wrapFunctionHandler({ next }: Middleware.WrapFunctionHandlerArgs): Promise<unknown> {
      let ended: V3Result;
      try {
        ended = { data: await next() };
      } catch (error) {
        ended = { error };
      }
      // v3's order once the function's code ends: the execution hooks, then its output, then `finished`.
      await this.onMemoizationEnd();
      await this.once("afterExecution");
      const result = await this.output(ended);
      await this.hooks.finished?.({ result: result.error !== undefined ? { error: result.error } : { data: result.data } });
      if (result.error !== undefined) throw result.error;
      return result.data;
    }

    async [INVOCATION_END](): Promise<void> {
      await this.once("afterExecution");
      await this.once("beforeResponse");
    }

    // One onSendEvent per send, as v3 calls it: transformSendEvent and wrapSendEvent of one send
    // share it through the events they pass on (sends of one invocation may run at once).
    private readonly sends = new WeakMap<readonly EventPayload[], V3SendHooks>();

    async transformSendEvent(arg: Middleware.TransformSendEventArgs): Promise<Middleware.TransformSendEventArgs> {
      const hooks = await this.sendHooks(arg.fn);
      const changed = await hooks.transformInput?.({ payloads: [...arg.events] });
      const next = changed?.payloads ? { ...arg, events: changed.payloads } : arg;
      this.sends.set(next.events, hooks);
      return next;
    }

    async wrapSendEvent({ next, fn, events }: Middleware.WrapSendEventArgs): Promise<{ ids: string[] }> {
      const hooks = this.sends.get(events) ?? (await this.sendHooks(fn));
      const result = await next();
      const changed = await hooks.transformOutput?.({ result: { ...result } });
      return { ...result, ...changed?.result };
    }

    private async sendHooks(fn: MiddlewareFunction | null): Promise<V3SendHooks> {
      return (await (await register(fn)).onSendEvent?.()) ?? {};
    }
  } as unknown as Middleware.Class;
}

/** The stored results as v3's `steps` list them: `{ id, data }` or `{ id, error }`. */
function memoList(steps: Record<string, Middleware.MemoizedStep>): { id: string; data?: unknown; error?: unknown }[] {
  return Object.entries(steps).map(([id, step]) => (step.type === "data" ? { id, data: step.data } : { id, error: step.error }));
}

/** The op v3 names a step's kind by. */
function stepOp(kind: Middleware.StepType): string {
  return kind === "run" ? "StepRun" : kind === "sendEvent" ? "StepRun" : kind === "fetch" ? "Gateway" : kind;
}

/** What `middleware: [...]` takes: v4's middleware classes and v3's `InngestMiddleware`s, in any order. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type MiddlewareEntry = Middleware.Class | InngestMiddleware<any>;

/** The entries as the classes the stack runs: a v3 middleware becomes the class that runs it for `owner`. */
export function middlewareClasses(entries: readonly MiddlewareEntry[], owner: { client: unknown; fnLevel: boolean }, what: string): Middleware.Class[] {
  return entries.map((entry) => {
    if (entry instanceof InngestMiddleware) return v3MiddlewareClass(entry, owner);
    if (typeof entry !== "function") throw new TypeError(`${what}: each entry must be a middleware class (extends Middleware.BaseMiddleware) or a new InngestMiddleware(...)`);
    return entry;
  });
}
