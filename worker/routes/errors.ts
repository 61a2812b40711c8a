import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every HTTP error is JSON: `{ error, path? }` (CONVENTIONS "Code"). */
export function jsonError(c: Context, status: ContentfulStatusCode, error: string, path?: string): Response {
  return c.json(path ? { error, path } : { error }, status);
}
