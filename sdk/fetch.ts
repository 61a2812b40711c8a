import { AsyncLocalStorage } from "node:async_hooks";
import type { ContextScope } from "./scope.ts";
import { z } from "zod";

/** A response as step.fetch memoizes it: enough to rebuild it on every replay without fetching again. */
export const fetchedResponseSchema = z.object({
  status: z.number().int(),
  statusText: z.string(),
  headers: z.record(z.string(), z.string()),
  body: z.string(),
});
export type FetchedResponse = z.infer<typeof fetchedResponseSchema>;

/** `step.fetch` (Inngest's `StepFetch`): `fetch` itself, with `config({ fallback })`. */
export type StepFetch = typeof globalThis.fetch & { config(options: StepFetchOptions): StepFetch; readonly fallback?: typeof globalThis.fetch | undefined };
export interface StepFetchOptions {
  /** What a call outside a run, or inside a step body, uses instead (the global `fetch` unless set; `undefined` refuses). */
  fallback?: typeof globalThis.fetch | undefined;
}

/** The step id Inngest gives a durable fetch: `step.fetch: <host>` (repeats get `:1`, `:2`). */
export function fetchStepId(input: RequestInfo | URL): string {
  const url = input instanceof Request ? input.url : String(input);
  return `step.fetch: ${new URL(url).hostname}`;
}

/** Performs the request (a fresh copy of a Request for every attempt) and reads the whole response. */
export async function performFetch(input: RequestInfo | URL, init: RequestInit | undefined, doFetch: typeof globalThis.fetch = globalThis.fetch): Promise<FetchedResponse> {
  const response = await doFetch(input instanceof Request ? input.clone() : input, init);
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  return { status: response.status, statusText: response.statusText, headers, body: await response.text() };
}

/** Statuses whose responses may not have a body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** A new Response from a memoized one: each replay gets its own, unread body. */
export function rebuildResponse(stored: FetchedResponse): Response {
  const body = NULL_BODY_STATUSES.has(stored.status) ? null : stored.body;
  return new Response(body, { status: stored.status, statusText: stored.statusText, headers: stored.headers });
}

/** Where a fetch is called: in a run's own code (durable), inside a step body, or outside any run. */
export type FetchScope = "durable" | "inside-step" | "outside-run";

/** The run whose handler code is running now, for the `fetch` export (set by the driver). */
export const runScope: ContextScope<{ scope: () => FetchScope; durable: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> }> = new AsyncLocalStorage<{ scope: () => FetchScope; durable: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> }>();

/**
 * A durable `fetch` to hand to any library (Inngest's `import { fetch } from "inngest"`): in a run's
 * own code it is `step.fetch`, elsewhere its fallback (the global `fetch` unless `config` says otherwise).
 *
 * @example
 * const api = new ProductApi({ fetch });
 */
export const fetch: StepFetch = createStepFetch(
  () => runScope.getStore()?.scope() ?? "outside-run",
  (input, init) => runScope.getStore()!.durable(input, init),
);

/**
 * Builds a StepFetch: `durable` makes the request a step of the run; where there is no run (or the
 * caller is inside a step body, which a retry runs again anyway) `scope` says so and the fallback is used.
 */
export function createStepFetch(scope: () => FetchScope, durable: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>): StepFetch {
  // Looked up at call time, so a fetch stubbed or replaced later is the one used.
  const options: StepFetchOptions = { fallback: (input, init) => globalThis.fetch(input, init) };
  const stepFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const where = scope();
    if (where === "durable") return durable(input, init);
    // Called unbound: workerd refuses a fetch whose `this` is not the global scope.
    const fallback = options.fallback;
    if (!fallback) throw new Error(`step.fetch() was called ${where === "inside-step" ? "inside a step body" : "outside a function run"} and has no fallback set`);
    return fallback(input, init);
  }) as StepFetch;
  Object.defineProperty(stepFetch, "fallback", { get: () => options.fallback, enumerable: true });
  stepFetch.config = (next) => {
    Object.assign(options, next);
    return stepFetch;
  };
  return stepFetch;
}
