import type { Context } from "hono";

/**
 * The request's `waitUntil`, for work that goes on after the answer; undefined when the app was
 * called without an execution context (`app.request()` in a test), where Hono's getter throws.
 */
export function waitUntilOf(c: Context): ((work: Promise<unknown>) => void) | undefined {
  try {
    const ctx = c.executionCtx;
    return (work) => ctx.waitUntil(work);
  } catch {
    return undefined;
  }
}
