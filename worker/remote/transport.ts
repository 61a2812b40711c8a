import type { StoredEvent } from "../../sdk/event.ts";
import { serializeError, type SerializedError } from "../../sdk/types.ts";
import { formatBytes, MAX_ANSWER_BYTES, readBounded, TimeBoundError, type BoundedText } from "./bounds.ts";
import type { SignatureCheck } from "./signature.ts";
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

/**
 * How requests to an app are signed and its answers checked outside dev mode (worker/remote/signer.ts):
 * `sign` gives the bytes to send and the headers that go with them; `verify` checks the
 * `x-inngest-signature` a cloud-mode SDK puts on its answer, over the body as it came.
 */
export interface AppSigner {
  sign(body: string): Promise<{ body: string; headers: Record<string, string> }>;
  verify(signature: string | null, body: string): Promise<SignatureCheck>;
}

/** How a call is made: signed or not, over what (`fetch` by default; tests give the SDK's handler), until when. */
export interface CallOptions {
  signer?: AppSigner;
  fetch?: typeof fetch;
  /** Aborts the call (the executor's deadline, with the bound it reached as its reason). */
  signal?: AbortSignal;
}

/**
 * POSTs one call request for `stepId` ("step" to discover, or a hashed id to run that step) to
 * the function's serve URL and reads the answer; never throws. Only the SDK's answer counts: a
 * redirect is not followed, and an answer without the SDK's header, past MAX_ANSWER_BYTES, or (in
 * cloud mode) without the app's signature is an error, retried as a failed call is.
 *
 * @example
 * const answer = await callApp(fn.remote.url, "step", body);
 */
export async function callApp(url: string, stepId: string, body: CallBody, options: CallOptions = {}): Promise<CallAnswer> {
  const { signer, fetch: send = fetch, signal } = options;
  const target = callUrl(url, stepId);
  let response: Response;
  let text: BoundedText;
  try {
    const plain = JSON.stringify(body);
    const signed = signer ? await signer.sign(plain) : { body: plain, headers: {} };
    response = await send(target, {
      method: "POST",
      headers: { "content-type": "application/json", "x-inngest-req-version": String(body.version), ...signed.headers },
      body: signed.body,
      // Followed, a redirect turns the POST into a GET, which the SDK answers with its status document.
      redirect: "manual",
      ...(signal ? { signal } : {}),
    });
    if (isRedirect(response.status)) {
      await response.body?.cancel().catch(() => undefined);
      const location = response.headers.get("location");
      const message = `the app's address answered HTTP ${response.status}, a redirect${location ? ` to ${location}` : ""}: calls do not follow redirects (a POST would become a GET); sync the app at the address its SDK answers on`;
      return callError("RedirectNotFollowedError", message);
    }
    text = await readBounded(response.body, MAX_ANSWER_BYTES, signal, response.headers.get("content-length"));
  } catch (err) {
    const reason: unknown = signal?.aborted ? signal.reason : err;
    return callError("AppUnreachableError", `could not call the app at ${target.origin}: ${reason instanceof TimeBoundError ? reason.message : String(reason)}`);
  }
  if (!text.ok) return callError("AnswerTooLargeError", `the app's answer is over ${formatBytes(MAX_ANSWER_BYTES)}, the limit of an answer: return a reference to large data, not the data`);
  const notTheSdks = await whyNotTheSdks(response, text.text, signer);
  if (notTheSdks) return callError("NotTheSdkError", notTheSdks);
  return readAnswer(response, text.text);
}

/**
 * Why an answer is not one the app's SDK gave, or undefined when it is: the SDK puts `x-inngest-sdk`
 * on every answer it gives, and in cloud mode signs it (`x-inngest-signature`, over the body as sent).
 */
async function whyNotTheSdks(response: Response, text: string, signer: AppSigner | undefined): Promise<string | undefined> {
  if (!response.headers.get("x-inngest-sdk")) {
    // The SDK strips its own headers but this one from an answer to a call whose signature it refused.
    if (response.headers.get("x-inngest-sdk-handled")) return `the app's SDK refused the call (HTTP ${response.status}, its signature not verified: is the app's INNGEST_SIGNING_KEY this Worker's STEPFLARE_SIGNING_KEY?): ${text.slice(0, 200)}`;
    const type = response.headers.get("content-type") ?? "no content type";
    return `the app's address answered HTTP ${response.status} (${type}) without the SDK's x-inngest-sdk header: not an answer from the inngest SDK (is the app down, or behind something else?): ${text.slice(0, 200)}`;
  }
  if (!signer) return undefined;
  const check = await signer.verify(response.headers.get("x-inngest-signature"), text);
  if (check.valid) return undefined;
  // inngest-js signs its answers from 3.22.4 on (v4 always does); an older SDK cannot be told from a forgery.
  if (check.reason === "missing_signature") return `the answer carries no x-inngest-signature: outside dev mode only an answer signed by the app's SDK counts (inngest-js signs them from 3.22.4 on: upgrade an older app)`;
  return `the answer's x-inngest-signature does not prove it the app's (${check.reason}): changed on the way, or not from the app's SDK (is its INNGEST_SIGNING_KEY this Worker's STEPFLARE_SIGNING_KEY?)`;
}

/** Reads the SDK's answer to a call request (its body already read as `text`). */
export function readAnswer(response: Response, text: string): CallAnswer {
  const json = parseJson(text);
  // Read against the run's clock by the executor: whole seconds or a date.
  const retryAfter = response.headers.get("retry-after") ?? undefined;
  const version = Number(response.headers.get("x-inngest-req-version") ?? NaN);
  if (response.status === 200) {
    // The SDK writes every output as JSON (undefined as null): a body that is not was cut short on the way.
    if (!json.ok) return callError("ProtocolError", `the app answered 200 with a body that is not JSON (cut short?): ${text.slice(0, 200)}`);
    return { type: "done", output: json.value };
  }
  if (response.status === 206) {
    const ops = json.ok ? opsSchema.safeParse(json.value) : undefined;
    if (!ops?.success) return callError("ProtocolError", `the app answered 206 with a body that is not a list of ops: ${text.slice(0, 200)}`);
    return { type: "ops", ops: ops.data, ...(retryAfter ? { retryAfter } : {}), ...(Number.isInteger(version) ? { version } : {}) };
  }
  const error = errorOf(json.ok ? json.value : undefined, `the app answered HTTP ${response.status}: ${text.slice(0, 200)}`);
  if (response.headers.get("x-inngest-no-retry") === "true") return { type: "failed", error };
  return { type: "error", error, ...(retryAfter ? { retryAfter } : {}) };
}

function callError(name: string, message: string): CallAnswer {
  return { type: "error", error: { name, message } };
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/** The URL of a call for `stepId` ("step" to discover, or a hashed id) to the function served at `url`. */
export function callUrl(url: string, stepId: string): URL {
  const target = new URL(url);
  target.searchParams.set("stepId", stepId);
  return target;
}

/**
 * An error the SDK serialized (`{ name, message, stack, cause?, …fields }`), kept within the bounds
 * of a stored error (its cause chain and fields too), or one saying what came instead.
 */
export function errorOf(value: unknown, fallback: string): SerializedError {
  const parsed = wireErrorSchema.safeParse(value);
  if (!parsed.success || !parsed.data.message) return { name: "Error", message: fallback };
  return serializeError(parsed.data);
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
