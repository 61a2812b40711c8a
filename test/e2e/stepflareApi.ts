/**
 * The REST API of a Stepflare under `wrangler dev`, as the end-to-end tests of remote apps call it:
 * JSON in and out, the signing key as a bearer when the Worker is closed.
 */
import { waitFor, type DevServer } from "./wrangler.ts";

const FINAL = ["Completed", "Failed", "Cancelled"];

/** A run as `GET /v1/runs/:id` shows it. */
export interface RunDetail {
  run_id: string;
  function_id: string;
  status: string;
  output: unknown;
  error: { name: string; message: string } | null;
  steps: { name: string; status: string; attempts: number; output?: unknown }[];
}

export function stepflareApi(dev: Pick<DevServer, "baseUrl" | "log">, options: { bearer?: string; runTimeoutMs?: number } = {}) {
  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${dev.baseUrl}${path}`, {
      method,
      headers: { ...(options.bearer ? { authorization: `Bearer ${options.bearer}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const runTimeoutMs = options.runTimeoutMs ?? 45_000;
  return {
    api,
    /** The ended run (with its steps) of function `functionId` that event `eventId` started. */
    finished: (eventId: string, functionId: string): Promise<RunDetail> =>
      waitFor(`a finished run of ${functionId} for event ${eventId}`, runTimeoutMs, dev, async () => {
        const { body } = await api<{ data: RunDetail[] }>("GET", `/v1/events/${encodeURIComponent(eventId)}/runs`);
        const run = body.data?.find((candidate) => candidate.function_id === functionId);
        if (!run || !FINAL.includes(run.status)) return undefined;
        return (await api<{ data: RunDetail }>("GET", `/v1/runs/${run.run_id}`)).body.data;
      }),
  };
}
