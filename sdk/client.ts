import type { Handler } from "./driver.ts";
import { reservedNameError, type EventPayload } from "./event.ts";
import type { EventType, SchemaData } from "./eventType.ts";
import { StepflareFunction, type FunctionConfig, type Trigger } from "./function.ts";
import type { CatalogData, CatalogPayload, EventCatalog, EventSchemas } from "./eventSchemas.ts";
import type { Middleware, MiddlewareCtxExtensions } from "./middleware/middleware.ts";
import { sendThroughMiddleware } from "./middleware/stack.ts";
import { middlewareClasses, type MiddlewareEntry } from "./middleware/v3.ts";

/** What a trigger may be: `{ event }`, `{ cron }` (or `cron(...)`), or an `eventType`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TriggerInput = Trigger | EventType<string, any>;

/**
 * The `event.data` a trigger gives the handler: its event type's schema's, the client's
 * `EventSchemas`' for its event name, or any object.
 */
export type TriggerData<T, TCatalog = {}> =
  T extends EventType<string, infer TSchema>
    ? // eslint-disable-next-line @typescript-eslint/no-explicit-any
      TSchema extends undefined ? Record<string, any> : SchemaData<TSchema>
    : T extends { event: infer TName }
      ? CatalogData<TCatalog, TName>
      : // eslint-disable-next-line @typescript-eslint/no-explicit-any
        Record<string, any>;

/** Sends events into Stepflare and answers their ids. */
export type EventSender = (events: EventPayload[]) => Promise<{ ids: string[] }>;

export interface StepflareOptions<TMiddleware extends readonly MiddlewareEntry[] = readonly MiddlewareEntry[], TCatalog extends EventCatalog = {}> {
  /** The app's id. */
  id: string;
  /** Middleware for every function of this client (before each function's own) and for `send`: v4 classes and v3 InngestMiddlewares. */
  middleware?: TMiddleware;
  /** Inngest v3's event schemas: they type `event.data` and `send()`, and their zod schemas are checked wherever events come in. */
  schemas?: EventSchemas<TCatalog>;
  /** Where a Stepflare Worker listens, for sending from outside it (e.g. "http://127.0.0.1:8787"). */
  baseUrl?: string;
  /** The event key for `POST /e/:key` when sending over HTTP. */
  eventKey?: string;
}

/**
 * The client: defines functions and sends events. Inside a Worker built with `serve()`, `send`
 * goes straight to the ingest path; elsewhere it posts to `baseUrl`.
 *
 * @example
 * const app = new Stepflare({ id: "shop" });
 * const fn = app.createFunction({ id: "hello" }, { event: "demo/hello" }, async ({ event }) => `hi ${event.data.name}`);
 */
export class Stepflare<const TMiddleware extends readonly MiddlewareEntry[] = [], TCatalog extends EventCatalog = {}> {
  readonly id: string;
  /** The client's middleware as the classes runs use (a v3 InngestMiddleware runs through one). */
  readonly middleware: readonly Middleware.Class[];
  /** The v3 event schemas given, if any. */
  readonly schemas?: EventSchemas<TCatalog>;
  private readonly options: StepflareOptions<TMiddleware, TCatalog>;
  private sender?: EventSender;

  constructor(options: StepflareOptions<TMiddleware, TCatalog>) {
    if (!options?.id) throw new TypeError("new Stepflare({ id }): id is required");
    this.id = options.id;
    this.options = options;
    if (options.schemas) this.schemas = options.schemas;
    this.middleware = middlewareClasses(options.middleware ?? [], { client: this, fnLevel: false }, "new Stepflare({ middleware })");
    for (const Class of this.middleware) Class.onRegister?.({ client: this, fn: null });
  }

  /** Whether `send` has a way to send without a baseUrl (serve() gave it the Worker's ingest path). */
  get hasSender(): boolean {
    return this.sender !== undefined;
  }

  /**
   * Defines a function: its config, one trigger or several, and the handler that runs per event.
   * Throws at once for an invalid config or a trigger `if` that is not valid CEL.
   *
   * @example
   * app.createFunction({ id: "welcome", retries: 3 }, { event: "user/created" }, async ({ event, step }) => {
   *   await step.run("send-email", () => sendWelcome(event.data.email));
   * });
   */
  // `any` by default, as in Inngest: untyped event data is read freely by handlers.
  // Inngest v4's form: the triggers inside the config, event types typing `event.data`.
  // Middleware (the client's, then the function's) adds to the handler's context what its transformFunctionInput adds.
  createFunction<const TTrigger extends TriggerInput, TOutput = unknown, const TFnMiddleware extends readonly MiddlewareEntry[] = []>(
    config: FunctionConfig<TriggerData<TTrigger, TCatalog>> & { triggers: TTrigger | readonly TTrigger[]; middleware?: TFnMiddleware },
    handler: Handler<TriggerData<TTrigger, TCatalog>, TOutput, MiddlewareCtxExtensions<TMiddleware> & MiddlewareCtxExtensions<TFnMiddleware>>,
  ): StepflareFunction;
  // Inngest v3's form: config, trigger(s), handler; `event.data` typed by the trigger's event (the client's EventSchemas).
  createFunction<const TTrigger extends TriggerInput, TOutput = unknown, const TFnMiddleware extends readonly MiddlewareEntry[] = []>(
    config: FunctionConfig<TriggerData<TTrigger, TCatalog>> & { middleware?: TFnMiddleware },
    trigger: TTrigger | readonly TTrigger[],
    handler: Handler<TriggerData<TTrigger, TCatalog>, TOutput, MiddlewareCtxExtensions<TMiddleware> & MiddlewareCtxExtensions<TFnMiddleware>>,
  ): StepflareFunction;
  // The same with the data's type given: `createFunction<MyData>(...)`.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  createFunction<TData extends object = Record<string, any>, TOutput = unknown, const TFnMiddleware extends readonly MiddlewareEntry[] = []>(
    config: FunctionConfig<TData> & { middleware?: TFnMiddleware },
    trigger: TriggerInput | readonly TriggerInput[],
    handler: Handler<TData, TOutput, MiddlewareCtxExtensions<TMiddleware> & MiddlewareCtxExtensions<TFnMiddleware>>,
  ): StepflareFunction;
  createFunction(config: unknown, triggerOrHandler: unknown, handler?: unknown): StepflareFunction {
    const by = { client: this, middleware: this.middleware };
    if (handler === undefined && typeof triggerOrHandler === "function" && config && typeof config === "object" && "triggers" in config) {
      const { triggers, ...rest } = config as { triggers: unknown };
      return new StepflareFunction(rest, triggers, triggerOrHandler, by);
    }
    return new StepflareFunction(config, triggerOrHandler, handler, by);
  }

  /**
   * Sends one event or several and answers their ids, once they are durably accepted. An empty
   * array sends nothing and answers `{ ids: [] }`.
   *
   * @example
   * const { ids } = await app.send({ name: "demo/hello", data: { name: "Ada" } });
   */
  async send(events: CatalogPayload<TCatalog, EventPayload> | CatalogPayload<TCatalog, EventPayload>[]): Promise<{ ids: string[] }> {
    // An event type's `create()` adds `validate`, which is not part of the event.
    const list = (Array.isArray(events) ? events : [events]).map(({ validate: _validate, ...event }: EventPayload & { validate?: unknown }) => event);
    // As in Inngest: sending no events is allowed and does nothing.
    if (list.length === 0) return { ids: [] };
    if (this.middleware.length > 0) return sendThroughMiddleware(this.middleware, this, list, (events) => this.deliver(events));
    return this.deliver(list);
  }

  private async deliver(list: EventPayload[]): Promise<{ ids: string[] }> {
    if (this.sender) return this.sender(list);
    const { baseUrl, eventKey } = this.options;
    if (!baseUrl) throw new Error("Stepflare.send: no baseUrl given and not running inside a Stepflare Worker");
    // Refused here as the event API would refuse them, without a request.
    for (const [i, { name }] of list.entries()) {
      const reserved = typeof name === "string" ? reservedNameError(name, i) : null;
      if (reserved) throw new Error(`Stepflare.send: ${reserved}`);
    }
    const response = await fetch(`${baseUrl.replace(/\/$/, "")}/e/${encodeURIComponent(eventKey ?? "dev")}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(list),
    });
    const body = (await response.json()) as { ids?: string[]; error?: string };
    if (!response.ok || !body.ids) throw new Error(`Stepflare.send failed (${response.status}): ${body.error ?? "no ids"}`);
    return { ids: body.ids };
  }

  /** Routes `send` to the ingest path of the Worker this client is served from (used by `serve()`). */
  useSender(sender: EventSender): void {
    this.sender = sender;
  }
}
