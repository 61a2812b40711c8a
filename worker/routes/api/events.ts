import { Hono } from "hono";
import { listEvents, toEvent } from "../../db/events.ts";
import { dispatchFromRequest } from "../../dispatch/inline.ts";
import type { Env } from "../../platform/env.ts";
import { acceptEvents, IngestError, ingestLimits, requestTooLarge } from "../../ingest/ingest.ts";
import { parseJsonBody, parseQuery, readBodyText } from "../body.ts";
import { errorResponse, jsonError } from "../errors.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { eventsQuerySchema } from "../../views/schemas.ts";
import { z } from "zod";
import { waitUntilOf } from "../waitUntil.ts";

/** `/v1/events`: the event log a page at a time, and sending events with the API's key. */
export const eventsRoutes = new Hono<{ Bindings: Env }>();

eventsRoutes.get("/v1/events", async (c) => {
  const query = parseQuery(c, eventsQuerySchema);
  if (!query.ok) return query.response;
  const { name, cursor, limit } = query.data;
  const after = cursor === undefined ? null : decodeCursor(cursor);
  if (cursor !== undefined && !after) return jsonError(c, 400, "invalid query parameter cursor: pass the next_cursor of the page before, unchanged", "cursor");
  const page = await listEvents(c.env, name !== undefined ? { name } : {}, after, limit);
  return c.json({ data: page.rows.map((row) => ({ ...toEvent(row), received_at: new Date(row.received_at).toISOString() })), next_cursor: encodeCursor(page.next) });
});

/**
 * Sends one event or an array as `POST /e/:key` does, authorized by the signing key (or the
 * dashboard's session) instead of an event key: the dashboard's "Send event".
 */
eventsRoutes.post("/v1/events", async (c) => {
  // Counted as it is read: a chunked body declares no Content-Length.
  const limits = ingestLimits(c.env);
  const text = await readBodyText(c, limits.requestBytes, requestTooLarge(limits));
  if (!text.ok) return text.response;
  const body = await parseJsonBody(c, z.unknown(), "events", '{ "name": string, "data"?: object } or an array of those', text.text);
  if (!body.ok) return body.response;
  try {
    const { ids } = await acceptEvents(c.env, body.data, { limits, ...dispatchFromRequest(c.env, waitUntilOf(c)) });
    return c.json({ ids, status: 200 });
  } catch (err) {
    if (err instanceof IngestError) return errorResponse(c, err);
    throw err;
  }
});
