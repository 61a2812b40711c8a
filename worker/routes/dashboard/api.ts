import type { Context } from "hono";
import type { Env } from "../../platform/env.ts";
import { FINAL_STATUSES, type RunStatus } from "../../platform/types.ts";
import type { SerializedError } from "../../../sdk/types.ts";
import type { z } from "@hono/zod-openapi";
import type { AppView, EventView, FunctionView, RunIndexView, RunSummaryView, runDetailSchema, StepView } from "../../views/schemas.ts";
import { apiRoutes } from "../api.ts";

export type DashboardContext = Context<{ Bindings: Env }>;

/** What a page asked the API for: the parsed body, or the API's error and status. */
export type ApiAnswer<T> = { ok: true; status: number; body: T } | { ok: false; status: number; error: string };

/**
 * Asks the JSON API in process, as the browser would over HTTP: with the page request's cookie
 * and authorization, so a page shows exactly what its viewer may see through `/v1`.
 *
 * @example
 * const answer = await callApi<{ data: FunctionView[] }>(c, "/v1/functions");
 */
export async function callApi<T>(c: DashboardContext, path: string): Promise<ApiAnswer<T>> {
  const headers = new Headers({ accept: "application/json" });
  for (const name of ["cookie", "authorization"]) {
    const value = c.req.header(name);
    if (value) headers.set(name, value);
  }
  const res = await apiRoutes.request(path, { headers }, c.env, executionContextOf(c));
  const body = (await res.json().catch(() => null)) as (T & { error?: string }) | null;
  if (res.ok && body !== null) return { ok: true, status: res.status, body };
  return { ok: false, status: res.status, error: body?.error ?? `the API answered ${res.status}` };
}

/** The request's execution context; absent when the app is called without one (in tests). */
function executionContextOf(c: DashboardContext): ExecutionContext | undefined {
  try {
    return c.executionCtx as ExecutionContext;
  } catch {
    return undefined;
  }
}

// The API's shapes, from its schemas (worker/views/schemas.ts).
export type { AppView, EventView, FunctionView, RunSummaryView, StepView };
export type { RunStatus, SerializedError };
/** A run as `GET /v1/runs` lists it. */
export type RunListing = RunIndexView;
/** A run as `GET /v1/runs/:id` answers it. */
export type RunDetail = z.infer<typeof runDetailSchema>;
/** An event as a run carries it (without the time it was received). */
export type TriggerEventView = RunDetail["events"][number];

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** True once a run can change no more. */
export function isFinal(status: RunStatus): boolean {
  return FINAL_STATUSES.has(status);
}
