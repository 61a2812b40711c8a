import { Hono } from "hono";
import type { Env } from "../platform/env.ts";
import { IngestError, ingestEvents, MAX_REQUEST_BYTES, parseEvents } from "../ingest/ingest.ts";
import { eventIdSource } from "../platform/eventIds.ts";
import { requireEventKey } from "./auth.ts";
import { errorResponse, jsonError } from "./errors.ts";

/** The event API: `POST /e/:key` with one event or an array (Inngest's shape). */
export const eventRoutes = new Hono<{ Bindings: Env }>();

eventRoutes.post("/e/:key", requireEventKey, async (c) => {
  const contentType = c.req.header("content-type");
  // JSON, or what `curl -d` sends without -H (form-urlencoded), as Inngest's own examples do.
  if (contentType && !/json|text\/plain|x-www-form-urlencoded/i.test(contentType)) {
    return jsonError(c, 415, `content-type ${contentType} is not accepted: send application/json`);
  }
  const bytes = await readLimited(c.req.raw, MAX_REQUEST_BYTES);
  if (bytes === null) return jsonError(c, 413, `request body is over ${MAX_REQUEST_BYTES} bytes (3 MiB), the limit per request`);
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
    const { ids } = await ingestEvents(c.env, parseEvents(body, eventIdSource(c.req.header("x-inngest-event-id-seed"))));
    return c.json({ ids, status: 200 });
  } catch (err) {
    if (err instanceof IngestError) return errorResponse(c, err);
    throw err;
  }
});

/** Reads a body, or answers null as soon as it passes `limit` bytes. */
async function readLimited(request: Request, limit: number): Promise<Uint8Array | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) return null;
  if (!request.body) return new Uint8Array();
  // With a declared length within the limit, one native read; otherwise count while streaming.
  if (declared !== null) return new Uint8Array(await request.arrayBuffer());
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const part of chunks) {
    bytes.set(part, offset);
    offset += part.byteLength;
  }
  return bytes;
}
