import type { Context } from "hono";
import type { z } from "zod";
import { jsonError } from "./errors.ts";

/**
 * Reads a JSON request body and parses it with `schema`: the data, or the 400 that says what is
 * wrong (`what` names the thing, `hint` shows its shape).
 *
 * @example
 * const body = await parseJsonBody(c, faultSwitchSchema, "fault switch", '{ "d1"?: boolean }');
 * if (!body.ok) return body.response;
 */
export async function parseJsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
  what: string,
  hint: string,
  text?: string,
): Promise<{ ok: true; data: z.output<T> } | { ok: false; response: Response }> {
  let body: unknown;
  try {
    body = JSON.parse(text ?? (await c.req.text()));
  } catch {
    return { ok: false, response: jsonError(c, 400, `request body is not valid JSON: send ${hint}`) };
  }
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, data: result.data };
  const issue = result.error.issues[0];
  const path = issue?.path.join(".") ?? "";
  return { ok: false, response: jsonError(c, 400, `invalid ${what}${path ? ` at ${path}` : ""}: ${issue?.message ?? "invalid input"}`, path || undefined) };
}

/**
 * Parses a request's query string with `schema`: the data, or the 400 that says which parameter
 * is wrong.
 *
 * @example
 * const query = parseQuery(c, runsQuerySchema);
 * if (!query.ok) return query.response;
 */
export function parseQuery<T extends z.ZodType>(c: Context, schema: T): { ok: true; data: z.output<T> } | { ok: false; response: Response } {
  const result = schema.safeParse(c.req.query());
  if (result.success) return { ok: true, data: result.data };
  const issue = result.error.issues[0];
  const path = issue?.path.join(".") ?? "";
  return { ok: false, response: jsonError(c, 400, `invalid query parameter${path ? ` ${path}` : ""}: ${issue?.message ?? "invalid input"}`, path || undefined) };
}

/** The most a body of a few short fields (a login form, a pause's options) may be: 16 KiB. */
export const SMALL_BODY_BYTES = 16 * 1024;

/**
 * Reads a request's body as text within `limit` bytes, or answers the 413 with `tooLarge` as its
 * error; a body that passes the limit is not read further, however it is sent.
 *
 * @example
 * const body = await readBodyText(c, 16 * 1024, "request body is over 16 KiB, the limit of a login");
 * if (!body.ok) return body.response;
 */
export async function readBodyText(c: Context, limit: number, tooLarge: string): Promise<{ ok: true; text: string } | { ok: false; response: Response }> {
  const bytes = await readLimited(c.req.raw, limit);
  if (bytes === null) return { ok: false, response: jsonError(c, 413, tooLarge) };
  return { ok: true, text: new TextDecoder().decode(bytes) };
}

/**
 * Reads a request's body, or answers null as soon as it passes `limit` bytes: at once when its
 * Content-Length says so, else while it streams (a chunked body declares no length).
 *
 * @example
 * const bytes = await readLimited(c.req.raw, MAX_REQUEST_BYTES);
 * if (bytes === null) return jsonError(c, 413, "request body is over 3 MiB");
 */
export async function readLimited(request: Request, limit: number): Promise<Uint8Array | null> {
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
