import type { Handler } from "./driver.ts";
import { reservedNameError, type EventPayload } from "./event.ts";
import type { EventType, SchemaData } from "./eventType.ts";
import { StepflareFunction, type FunctionConfig, type Trigger } from "./function.ts";

/** What a trigger may be: `{ event }`, `{ cron }` (or `cron(...)`), or an `eventType`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TriggerInput = Trigger | EventType<string, any>;

/** The `event.data` a trigger gives the handler: its event type's schema's, or any object. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TriggerData<T> = T extends EventType<string, infer TSchema> ? (TSchema extends undefined ? Record<string, any> : SchemaData<TSchema>) : Record<string, any>;

/** Sends events into Stepflare and answers their ids. */
export type EventSender = (events: EventPayload[]) => Promise<{ ids: string[] }>;

export interface StepflareOptions {
  /** The app's id. */
  id: string;
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
export class Stepflare {
  readonly id: string;
  private readonly options: StepflareOptions;
  private sender?: EventSender;

  constructor(options: StepflareOptions) {
    if (!options?.id) throw new TypeError("new Stepflare({ id }): id is required");
    this.id = options.id;
    this.options = options;
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
  createFunction<TTrigger extends TriggerInput, TOutput = unknown>(
    config: FunctionConfig<TriggerData<TTrigger>> & { triggers: TTrigger | readonly TTrigger[] },
    handler: Handler<TriggerData<TTrigger>, TOutput>,
  ): StepflareFunction;
  // Inngest v3's form: config, trigger(s), handler.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  createFunction<TData extends object = Record<string, any>, TOutput = unknown>(
    config: FunctionConfig<TData>,
    trigger: TriggerInput | readonly TriggerInput[],
    handler: Handler<TData, TOutput>,
  ): StepflareFunction;
  createFunction(config: unknown, triggerOrHandler: unknown, handler?: unknown): StepflareFunction {
    if (handler === undefined && typeof triggerOrHandler === "function" && config && typeof config === "object" && "triggers" in config) {
      const { triggers, ...rest } = config as { triggers: unknown };
      return new StepflareFunction(rest, triggers, triggerOrHandler);
    }
    return new StepflareFunction(config, triggerOrHandler, handler);
  }

  /**
   * Sends one event or several and answers their ids, once they are durably accepted. An empty
   * array sends nothing and answers `{ ids: [] }`.
   *
   * @example
   * const { ids } = await app.send({ name: "demo/hello", data: { name: "Ada" } });
   */
  async send(events: EventPayload | EventPayload[]): Promise<{ ids: string[] }> {
    // An event type's `create()` adds `validate`, which is not part of the event.
    const list = (Array.isArray(events) ? events : [events]).map(({ validate: _validate, ...event }: EventPayload & { validate?: unknown }) => event);
    // As in Inngest: sending no events is allowed and does nothing.
    if (list.length === 0) return { ids: [] };
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
