import type { Context } from "hono";
import type { Env } from "../../env.ts";
import { FINAL_STATUSES, type RunStatus } from "../../messages.ts";
import type { SerializedError } from "../../../sdk/types.ts";
import type { RunSummaryView, StepView } from "../runView.ts";
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

// The API's shapes as the pages read them (worker/routes/api's views).
export type { RunSummaryView, StepView };
export type { RunStatus, SerializedError };

export interface FunctionView {
  id: string;
  name: string;
  triggers: ({ event: string; if?: string } | { cron: string })[];
  config: Record<string, unknown>;
  paused: boolean;
  crons: { cron: string; timezone: string; next_run_at: string | null }[];
  stats?: { by_status: Partial<Record<RunStatus, number>>; hours: { hour: string; runs: number; failures: number }[] };
}

export interface RunListing {
  run_id: string;
  function_id: string;
  event_id: string;
  status: RunStatus;
  run_started_at: string;
  ended_at: string | null;
  parent_run_id?: string;
  skip_reason?: string | null;
}

export interface EventView {
  id: string;
  name: string;
  data: Record<string, unknown>;
  user?: Record<string, unknown>;
  v?: string;
  ts: number;
  received_at?: string;
}

export interface RunDetail extends RunSummaryView {
  steps: StepView[];
  events?: EventView[];
  children: { run_id: string; function_id: string; status: RunStatus }[];
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** True once a run can change no more. */
export function isFinal(status: RunStatus): boolean {
  return FINAL_STATUSES.has(status);
}
