import type { Handler } from "./driver.ts";
import { reservedNameError, type EventPayload } from "./event.ts";
import { StepflareFunction, type FunctionConfig, type Trigger } from "./function.ts";

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
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  createFunction<TData extends object = Record<string, any>, TOutput = unknown>(
    config: FunctionConfig<TData>,
    trigger: Trigger | Trigger[],
    handler: Handler<TData, TOutput>,
  ): StepflareFunction {
    return new StepflareFunction(config, trigger, handler);
  }

  /**
   * Sends one event or several and answers their ids, once they are durably accepted. An empty
   * array sends nothing and answers `{ ids: [] }`.
   *
   * @example
   * const { ids } = await app.send({ name: "demo/hello", data: { name: "Ada" } });
   */
  async send(events: EventPayload | EventPayload[]): Promise<{ ids: string[] }> {
    const list = Array.isArray(events) ? events : [events];
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
