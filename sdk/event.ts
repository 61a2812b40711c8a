import { z } from "zod";

/** Names and ids: 1..255 characters (DESIGN "Limits"). */
export const nameSchema = z.string().min(1, "must not be empty").max(255, "must be at most 255 characters");

const jsonObjectSchema = z.record(z.string(), z.unknown());

/**
 * An event as senders write it (Inngest's shape): `name` required, `data` an object (default `{}`),
 * optional `id` (deduplication key for 24 h), `ts` (epoch ms; in the future delays its runs), `user`, `v`.
 * The one schema for events: the event API, `app.send` and `step.sendEvent` all parse with it.
 */
export const eventPayloadSchema = z.object({
  name: nameSchema,
  data: jsonObjectSchema.nullish().transform((data) => data ?? {}),
  id: nameSchema.optional(),
  ts: z.number().int().nonnegative().optional(),
  user: jsonObjectSchema.nullish().transform((user) => user ?? undefined),
  v: z.string().max(255).nullish().transform((v) => v ?? undefined),
});

/**
 * Event names starting with one of these are the engine's own: Inngest's (`inngest/function.failed`)
 * and Stepflare's alerts (`stepflare/run.stuck`, `stepflare/function.budget_exceeded`).
 */
export const RESERVED_NAME_PREFIXES = ["inngest/", "stepflare/"] as const;

/**
 * Why a sender may not send the event at `index` of a request, or null when it may: names starting
 * with `inngest/` or `stepflare/` are sent only by the engine, so a function triggered by one can
 * trust it. The event API and the client both refuse with this message.
 *
 * @example
 * reservedNameError("inngest/function.failed", 0);
 * // 'event 0: the name "inngest/function.failed" is reserved: names starting with "inngest/" are sent only by Stepflare'
 */
export function reservedNameError(name: string, index: number): string | null {
  const prefix = RESERVED_NAME_PREFIXES.find((reserved) => name.startsWith(reserved));
  if (!prefix) return null;
  return `event ${index}: the name ${JSON.stringify(name)} is reserved: names starting with ${JSON.stringify(prefix)} are sent only by Stepflare`;
}

/**
 * Event ids starting with this are the engine's own: the events a run's end sends
 * (`stepflare:<run id>-failed`, `-cancelled`, `-finished`), a child run's `-invoked`, a cron's
 * `stepflare:cron-<run id>` and the ids `step.sendEvent` derives. Senders may not use them: the event
 * log drops an id it saw in the last 24 h, so a sender who predicted a run's id could otherwise send
 * its failure event's id first and `onFailure` would never run.
 */
export const RESERVED_ID_PREFIX = "stepflare:";

/**
 * The id of an event the engine sends: its parts joined by `-` in the reserved space, the same every
 * time (a redelivery is a duplicate) and never one a sender could have sent.
 *
 * @example
 * engineEventId(runId, "failed"); // "stepflare:<run id>-failed"
 */
export function engineEventId(...parts: string[]): string {
  return RESERVED_ID_PREFIX + parts.join("-");
}

/**
 * Why a sender may not give the event at `index` of a request this id, or null when it may: ids
 * starting with `stepflare:` are given only by the engine (see {@link RESERVED_ID_PREFIX}).
 *
 * @example
 * reservedIdError("stepflare:0123-failed", 0);
 * // 'event 0: the id "stepflare:0123-failed" is reserved: ids starting with "stepflare:" are given only by Stepflare to its own events'
 */
export function reservedIdError(id: string, index: number): string | null {
  if (!id.startsWith(RESERVED_ID_PREFIX)) return null;
  return `event ${index}: the id ${JSON.stringify(id)} is reserved: ids starting with ${JSON.stringify(RESERVED_ID_PREFIX)} are given only by Stepflare to its own events`;
}

/** An array of events, as `POST /e/:key` takes (or one event alone). */
export const eventBatchSchema = z.array(eventPayloadSchema);

/** What a sender writes. */
export type EventPayload<TData extends object = Record<string, unknown>> = {
  name: string;
  data?: TData;
  id?: string;
  ts?: number;
  user?: Record<string, unknown>;
  v?: string;
};

/** An event as a handler receives it: with its id and timestamp set. */
// `any` by default, as in Inngest: untyped event data is read freely by handlers.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface StoredEvent<TData extends object = Record<string, any>> {
  id: string;
  name: string;
  data: TData;
  ts: number;
  user?: Record<string, unknown>;
  v?: string;
  /**
   * Set by the engine, never by a sender: how many events in a row, each sent by a run the one
   * before it started, led to this one (absent: 0, an event from outside). The runaway guard
   * (docs/production.md "Runaway guards") refuses a send past `STEPFLARE_MAX_EVENT_DEPTH`.
   * Handlers do not see it.
   */
  depth?: number;
}
