import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { dispatchedAtSql, getEvent } from "../worker/db/events.ts";
import { runIdFor } from "../worker/platform/runId.ts";
import type { RunObject } from "../worker/runs/RunObject.ts";
import { expect } from "vitest";

export interface RunJson {
  run_id: string;
  function_id: string;
  event_id: string;
  status: string;
  output: unknown;
  error: { name: string; message: string } | null;
  run_started_at: string;
  ended_at: string | null;
  steps?: { id: string; name: string; kind: string; status: string; attempts: number; output: unknown; error: unknown }[];
}

/** A request to the Worker under test, as a client would make it. */
export function request(path: string, init?: RequestInit): Promise<Response> {
  return (exports as unknown as { default: Fetcher }).default.fetch(new Request(`http://stepflare.test${path}`, init));
}

/** POSTs events to the event API and answers their ids. */
export async function sendEvents(events: unknown): Promise<string[]> {
  const response = await request("/e/test-key", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(events) });
  const body = (await response.json()) as { ids: string[]; status: number };
  expect(response.status, JSON.stringify(body)).toBe(200);
  expect(body.status).toBe(200);
  return body.ids;
}

/** A key no other test uses, so tests never depend on each other or on order. */
export function uniqueKey(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function runsOf(eventId: string): Promise<RunJson[]> {
  const response = await request(`/v1/events/${encodeURIComponent(eventId)}/runs`);
  if (response.status === 404) return [];
  return ((await response.json()) as { data: RunJson[] }).data;
}

const FINAL = new Set(["Completed", "Failed", "Cancelled", "Skipped"]);

/** Waits until the event has `count` runs and all of them have ended; answers them by function id. */
export async function finishedRuns(eventId: string, count = 1, timeoutMs = 15_000): Promise<Map<string, RunJson>> {
  const runs = await eventually(
    async () => {
      const list = await runsOf(eventId);
      return list.length === count && list.every((r) => FINAL.has(r.status)) ? list : undefined;
    },
    timeoutMs,
    `${count} finished run(s) of event ${eventId}`,
  );
  return new Map(runs.map((r) => [r.function_id, r]));
}

export async function getRun(runId: string): Promise<RunJson> {
  const response = await request(`/v1/runs/${runId}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: RunJson }).data;
}

/** How many times the side effect `key` happened. */
export async function effectCount(key: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM test_effects WHERE key = ?1").bind(key).first<{ n: number }>();
  return row?.n ?? 0;
}

export async function storedEventCount(): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM events").first<{ n: number }>();
  return row?.n ?? 0;
}

/** Waits until the consumer has dispatched the event (started every run it triggers, maybe none). */
export async function dispatched(eventId: string): Promise<void> {
  await eventually(async () => {
    const row = await env.DB.prepare(`SELECT ${dispatchedAtSql()} AS dispatched_at FROM events WHERE id = ?1`).bind(eventId).first<{ dispatched_at: number | null }>();
    return row?.dispatched_at ? true : undefined;
  }, 15_000, `dispatch of event ${eventId}`);
}

/** A fresh stub of a run's object (a stub that saw its object reset stays broken: never reuse one). */
export function runStub(runId: string): DurableObjectStub<RunObject> {
  return env.RUNS.get(env.RUNS.idFromName(runId));
}

/** The id of the one run `eventId` started, once the runs index knows it. */
export async function runIdOf(eventId: string): Promise<string> {
  const runs = await eventually(async () => {
    const list = await runsOf(eventId);
    return list.length === 1 ? list : undefined;
  }, 15_000, `the run of event ${eventId}`);
  return runs[0]!.run_id;
}

/**
 * The id of the run `functionId` starts for event `eventId`, derived as the engine derives it, from
 * the event log alone: no run's object is asked (a listing that asks one a test is killing fails).
 */
export async function derivedRunId(functionId: string, eventId: string): Promise<string> {
  const found = await getEvent(env, eventId);
  if (!found) throw new Error(`event ${eventId} is not in the event log`);
  return runIdFor(functionId, eventId, found.receivedAt);
}

/**
 * Waits for a run to end, running its alarm at once (a killed run's watchdog is 10 s away). The
 * alarm runs an invocation to its end: it is not awaited, so a replay that never settles fails at
 * the deadline rather than hanging the test. A run not started yet, or whose object cannot answer
 * now, is asked again.
 */
export async function endedRun(runId: string, timeoutMs = 30_000): Promise<RunJson> {
  let alarm: Promise<unknown> | null = null;
  return eventually(
    async () => {
      const response = await request(`/v1/runs/${runId}`);
      const run = response.status === 200 ? ((await response.json()) as { data: RunJson }).data : undefined;
      if (run && FINAL.has(run.status)) return run;
      // status() first sets an alarm on a run that has none: runDurableObjectAlarm deletes the alarm before it
      // runs the handler, so a handler killed by its step (as these runs' are) leaves none, where the runtime
      // would retry it (and the tick would wake the run).
      alarm ??= runStub(runId)
        .status()
        .catch(() => null)
        .then(() => runDurableObjectAlarm(runStub(runId)))
        .catch(() => false)
        .finally(() => (alarm = null));
      return undefined;
    },
    timeoutMs,
    `run ${runId} to end`,
  );
}
