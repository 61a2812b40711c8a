import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorCode, StepflareError } from "../platform/errors.ts";

/** Every HTTP error is JSON: `{ error, path? }` (CONVENTIONS "Code"). */
export function jsonError(c: Context, status: ContentfulStatusCode, error: string, path?: string): Response {
  return c.json(path ? { error, path } : { error }, status);
}

/** The HTTP status of each error code: the one place an engine error becomes a status. */
export const HTTP_STATUS = {
  "event.invalid": 400,
  "event.too_large": 413,
  "function.not_found": 404,
  "run.not_found": 404,
  "function.paused": 409,
  "request.invalid": 400,
  "app.sync_invalid": 400,
  "app.sync_failed": 502,
  "binding.fault_injected": 503,
  "config.invalid": 503,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

/** An engine error as its HTTP answer: its status, and `{ error, path? }`. */
export function errorResponse(c: Context, err: StepflareError): Response {
  return jsonError(c, HTTP_STATUS[err.code], err.message, err.path);
}
