import { Hono } from "hono";
import type { Env } from "../platform/env.ts";
import { acceptEvents, IngestError, ingestLimits, requestTooLarge } from "../ingest/ingest.ts";
import { dispatchFromRequest } from "../dispatch/inline.ts";
import { requireEventKey } from "./auth.ts";
import { readLimited } from "./body.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { waitUntilOf } from "./waitUntil.ts";

/** The event API: `POST /e/:key` with one event or an array (Inngest's shape). */
export const eventRoutes = new Hono<{ Bindings: Env }>();

eventRoutes.post("/e/:key", requireEventKey, async (c) => {
  const contentType = c.req.header("content-type");
  // JSON, or what `curl -d` sends without -H (form-urlencoded), as Inngest's own examples do.
  if (contentType && !/json|text\/plain|x-www-form-urlencoded/i.test(contentType)) {
    return jsonError(c, 415, `content-type ${contentType} is not accepted: send application/json`);
  }
  const limits = ingestLimits(c.env);
  const bytes = await readLimited(c.req.raw, limits.requestBytes);
  if (bytes === null) return jsonError(c, 413, requestTooLarge(limits));
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return jsonError(c, 400, "request body is not valid UTF-8");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return jsonError(c, 400, "request body is not valid JSON");
  }
  try {
    const { ids } = await acceptEvents(c.env, body, { seed: c.req.header("x-inngest-event-id-seed"), limits, ...dispatchFromRequest(c.env, waitUntilOf(c)) });
    return c.json({ ids, status: 200 });
  } catch (err) {
    if (err instanceof IngestError) return errorResponse(c, err);
    throw err;
  }
});
