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

/** Event names starting with this are the engine's own (`inngest/function.failed`), as in Inngest. */
export const RESERVED_NAME_PREFIX = "inngest/";

/**
 * Why a sender may not send the event at `index` of a request, or null when it may: names starting
 * with `inngest/` are sent only by the engine, so a function triggered by one can trust it. The
 * event API and the client both refuse with this message.
 *
 * @example
 * reservedNameError("inngest/function.failed", 0);
 * // 'event 0: the name "inngest/function.failed" is reserved: names starting with "inngest/" are sent only by Stepflare'
 */
export function reservedNameError(name: string, index: number): string | null {
  if (!name.startsWith(RESERVED_NAME_PREFIX)) return null;
  return `event ${index}: the name ${JSON.stringify(name)} is reserved: names starting with ${JSON.stringify(RESERVED_NAME_PREFIX)} are sent only by Stepflare`;
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
}
