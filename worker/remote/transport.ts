import type { StoredEvent } from "../../sdk/event.ts";
import type { SerializedError } from "../../sdk/types.ts";
import { opsSchema, wireErrorSchema, type Op } from "./wire.ts";

// One call request to an app's serve URL and its answer, as the SDK gives it (protocol §3).

/** The body of a call request. */
export interface CallBody {
  event: StoredEvent;
  events: StoredEvent[];
  /** Memoized results by hashed step id: `{ data }` or `{ error }`. */
  steps: Record<string, { data: unknown } | { error: SerializedError }>;
  version: number;
  ctx: {
    run_id: string;
    attempt: number;
    max_attempts: number;
    disable_immediate_execution: boolean;
    use_api: false;
    stack: { stack: string[]; current: number };
    /** Set together when the SDK may checkpoint: the function and this call's id, which its checkpoints name. */
    fn_id?: string;
    qi_id?: string;
  };
}

/** What an app answered, read. */
export type CallAnswer =
  /** 200: the run is done, with the handler's return value. */
  | { type: "done"; output: unknown }
  /** 206: ops (steps found, run, failed, or asking for a sleep, a wait, an invoke). */
  | { type: "ops"; ops: Op[]; retryAfter?: string; version?: number }
  /** 400 with `x-inngest-no-retry: true`: the function failed for good. */
  | { type: "failed"; error: SerializedError }
  /** Anything else (a 500, a network error, a body that is not the protocol's): try again later. */
  | { type: "error"; error: SerializedError; retryAfter?: string };

/** Signs a body for an app outside dev mode (worker/remote/signature.ts), giving the bytes to send and the headers that go with them. */
export type RequestSigner = (body: string) => Promise<{ body: string; headers: Record<string, string> }>;

/** How a call is made: signed or not, and over what (`fetch` by default; tests give the SDK's handler). */
export interface CallOptions {
  sign?: RequestSigner;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * POSTs one call request for `stepId` ("step" to discover, or a hashed id to run that step) to
 * the function's serve URL and reads the answer; never throws.
 *
 * @example
 * const answer = await callApp(fn.remote.url, "step", body);
 */
export async function callApp(url: string, stepId: string, body: CallBody, options: CallOptions = {}): Promise<CallAnswer> {
  const { sign, fetch: send = fetch, timeoutMs = 10 * 60 * 1000 } = options;
  const target = callUrl(url, stepId);
  let response: Response;
  let text: string;
  try {
    const plain = JSON.stringify(body);
    const signed = sign ? await sign(plain) : { body: plain, headers: {} };
    response = await send(target, {
      method: "POST",
      headers: { "content-type": "application/json", "x-inngest-req-version": String(body.version), ...signed.headers },
      body: signed.body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await response.text();
  } catch (err) {
    return { type: "error", error: { name: "AppUnreachableError", message: `could not call the app at ${target.origin}: ${String(err)}` } };
  }
  return readAnswer(response, text);
}

/** Reads an app's answer to a call request (its body already read as `text`). */
export function readAnswer(response: Response, text: string): CallAnswer {
  const json = parseJson(text);
  // Read against the run's clock by the executor: whole seconds or a date.
  const retryAfter = response.headers.get("retry-after") ?? undefined;
  const version = Number(response.headers.get("x-inngest-req-version") ?? NaN);
  if (response.status === 200) return { type: "done", output: json.ok ? json.value : text };
  if (response.status === 206) {
    const ops = json.ok ? opsSchema.safeParse(json.value) : undefined;
    if (!ops?.success) return { type: "error", error: { name: "ProtocolError", message: `the app answered 206 with a body that is not a list of ops: ${text.slice(0, 200)}` } };
    return { type: "ops", ops: ops.data, ...(retryAfter ? { retryAfter } : {}), ...(Number.isInteger(version) ? { version } : {}) };
  }
  const error = errorOf(json.ok ? json.value : undefined, `the app answered HTTP ${response.status}: ${text.slice(0, 200)}`);
  if (response.headers.get("x-inngest-no-retry") === "true") return { type: "failed", error };
  return { type: "error", error, ...(retryAfter ? { retryAfter } : {}) };
}

/** The URL of a call for `stepId` ("step" to discover, or a hashed id) to the function served at `url`. */
export function callUrl(url: string, stepId: string): URL {
  const target = new URL(url);
  target.searchParams.set("stepId", stepId);
  return target;
}

/** An error the SDK serialized (`{ name, message, stack }`), or one saying what came instead. */
export function errorOf(value: unknown, fallback: string): SerializedError {
  const parsed = wireErrorSchema.safeParse(value);
  if (!parsed.success || !parsed.data.message) return { name: "Error", message: fallback };
  return { name: parsed.data.name, message: parsed.data.message, ...(parsed.data.stack ? { stack: parsed.data.stack } : {}) };
}

/** `retry-after`: whole seconds or an HTTP/ISO date, as epoch ms. */
export function retryAfterAt(header: string | undefined, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return now + Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : at;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}
