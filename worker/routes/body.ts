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
