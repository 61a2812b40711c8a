import { ulid } from "ulidx";
import { EventDataError, validateEventData } from "../../sdk/eventType.ts";
import { eventTypeOf } from "../platform/registry.ts";
import { eventBatchSchema, eventPayloadSchema, reservedIdError, reservedNameError, type StoredEvent } from "../../sdk/event.ts";
import { DEDUP_WINDOW_MS, insertEvents, undispatchedEvents } from "../db/events.ts";
import type { Env } from "../platform/env.ts";
import type { AcceptedEvent } from "../platform/types.ts";
import { enqueueEvents } from "../queue/send.ts";
import { utf8Bytes } from "../../sdk/output.ts";
import { StepflareError } from "../platform/errors.ts";
import { eventIdSource } from "../platform/eventIds.ts";
import { BIND_R2_HINT, MAX_LARGE_VALUE_BYTES, offloadEventData, resolveEventData } from "../platform/largeValues.ts";

/** Ingest limits (DESIGN "Limits"). */
export const MAX_EVENT_BYTES = 512 * 1024;
export const MAX_REQUEST_BYTES = 3 * 1024 * 1024;
export const MAX_EVENTS_PER_REQUEST = 5000;

/** The most one event and one request may be: an event's data in R2 (a bucket bound) lifts both to 16 MiB. */
export interface IngestLimits {
  eventBytes: number;
  requestBytes: number;
}

/** The limits without a bucket: one event's data must fit a row of the log. */
export const ROW_LIMITS: IngestLimits = { eventBytes: MAX_EVENT_BYTES, requestBytes: MAX_REQUEST_BYTES };
const R2_LIMITS: IngestLimits = { eventBytes: MAX_LARGE_VALUE_BYTES, requestBytes: MAX_LARGE_VALUE_BYTES };

/**
 * The event API's limits with this Worker's bindings.
 *
 * @example
 * const limits = ingestLimits(c.env);
 */
export function ingestLimits(env: Pick<Env, "VALUES">): IngestLimits {
  return env.VALUES ? R2_LIMITS : ROW_LIMITS;
}

/** "the limit per request" and how to raise it, for a request body over `limits.requestBytes`. */
export function requestTooLarge(limits: IngestLimits): string {
  return `request body is over ${limits.requestBytes} bytes (${formatBytes(limits.requestBytes)}), the limit per request${limits === ROW_LIMITS ? `; ${BIND_R2_HINT}` : ""}`;
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`;
}

/** A request the event API refuses (`event.invalid` or `event.too_large`); the message says what is wrong. */
export class IngestError extends StepflareError {
  override name = "IngestError";
  constructor(
    override readonly code: "event.invalid" | "event.too_large",
    message: string,
    path?: string,
  ) {
    super(code, message, path);
  }
}

/**
 * Validates one event or an array from a sender (Inngest's shape; an empty array is no events, not
 * an error) and checks the limits; throws IngestError. Names starting with `inngest/` and ids
 * starting with `stepflare:` are refused: the engine sends those through `ingestEvents` directly, and
 * a sender must not claim an id the engine will use. Events without an id get one from `nextId`.
 * `limits` are the event API's (ingestLimits); a step's sends keep the row limits.
 *
 * @example
 * const events = parseEvents(JSON.parse(body));
 */
export function parseEvents(body: unknown, nextId: (index: number) => string = () => ulid(), limits: IngestLimits = ROW_LIMITS): StoredEvent[] {
  const result = (Array.isArray(body) ? eventBatchSchema : eventPayloadSchema.transform((event) => [event])).safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    throw new IngestError("event.invalid", `invalid event${path ? ` at ${path}` : ""}: ${issue?.message ?? "invalid input"}`, path || undefined);
  }
  const payloads = result.data;
  if (payloads.length > MAX_EVENTS_PER_REQUEST) {
    throw new IngestError("event.too_large", `${payloads.length} events in one request; the limit is ${MAX_EVENTS_PER_REQUEST}`);
  }
  const now = Date.now();
  return payloads.map((payload, i) => {
    const reserved = reservedNameError(payload.name, i);
    if (reserved) throw new IngestError("event.invalid", reserved, `${i}.name`);
    // Only an id the sender gave is checked: the engine's own come from `nextId` (step.sendEvent's).
    const reservedId = payload.id === undefined ? null : reservedIdError(payload.id, i);
    if (reservedId) throw new IngestError("event.invalid", reservedId, `${i}.id`);
    // An event whose type a function declared with a schema (eventType) must fit it.
    const type = eventTypeOf(payload.name);
    if (type) {
      try {
        validateEventData(type, payload.data, i);
      } catch (err) {
        if (err instanceof EventDataError) throw new IngestError("event.invalid", `invalid ${err.message}`, err.path);
        throw err;
      }
    }
    const event: StoredEvent = {
      id: payload.id ?? nextId(i),
      name: payload.name,
      data: payload.data,
      ts: payload.ts ?? now,
      ...(payload.user ? { user: payload.user } : {}),
      ...(payload.v ? { v: payload.v } : {}),
    };
    const bytes = utf8Bytes(JSON.stringify(event));
    if (bytes > limits.eventBytes) {
      const raise = limits === ROW_LIMITS ? `; ${BIND_R2_HINT}` : "";
      throw new IngestError("event.too_large", `event ${i} is ${bytes} bytes; the limit is ${limits.eventBytes} bytes (${formatBytes(limits.eventBytes)}) per event${raise}`, String(i));
    }
    return event;
  });
}

/** How a caller with a request to finish dispatches events itself: true when it took them (dispatch/inline.ts), false to leave them to the queue. */
export interface IngestOptions {
  dispatchNow?: (accepted: AcceptedEvent[]) => boolean;
  /** When the events were received (default: now); acceptEvents gives the time their ids were made at. */
  receivedAt?: number;
}

/**
 * A sender's request of events, validated (parseEvents) and stored (ingestEvents): those without an
 * id get one made at the receipt's millisecond, or from the `inngest` SDK's id `seed`.
 *
 * @example
 * const { ids } = await acceptEvents(env, body, { seed: c.req.header("x-inngest-event-id-seed"), limits });
 */
export async function acceptEvents(env: Env, body: unknown, { seed, limits = ROW_LIMITS, ...options }: IngestOptions & { seed?: string | null; limits?: IngestLimits } = {}): Promise<{ ids: string[] }> {
  const receivedAt = Date.now();
  return ingestEvents(env, parseEvents(body, eventIdSource(seed, receivedAt), limits), { ...options, receivedAt });
}

/**
 * Makes events durable and starts their dispatch: writes them to the D1 event log, then hands the
 * new ones, with any duplicate whose first copy is stored but was never dispatched, to `dispatchNow`
 * or else to the queue. Answers once they are stored and handed over; ids come back in order,
 * duplicates included. Takes events as they are, reserved names included: senders' events come
 * through parseEvents.
 *
 * @example
 * const { ids } = await ingestEvents(env, parseEvents(body));
 */
export async function ingestEvents(env: Env, events: StoredEvent[], { dispatchNow, receivedAt = Date.now() }: IngestOptions = {}): Promise<{ ids: string[] }> {
  // Large events' data goes to R2 before the log's rows that name it.
  const fresh = await insertEvents(env, events, receivedAt, await offloadEventData(env, events, receivedAt));
  const accepted: AcceptedEvent[] = fresh.map((event) => ({ event, receivedAt }));
  const freshIds = new Set(fresh.map((event) => event.id));
  const duplicates = [...new Set(events.map((event) => event.id).filter((id) => !freshIds.has(id)))];
  if (duplicates.length > 0) {
    const undispatched = await undispatchedEvents(env, duplicates, receivedAt - DEDUP_WINDOW_MS);
    await resolveEventData(env, undispatched);
    accepted.push(...undispatched);
  }
  if (!dispatchNow?.(accepted)) await enqueueEvents(env, accepted);
  return { ids: events.map((e) => e.id) };
}
