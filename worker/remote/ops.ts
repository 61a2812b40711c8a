// What the remote executor does with each op an app reports (protocol §3): one handler per op
// name, in a map the compiler checks against wire.ts's list, so an op without a handler does not compile.

import { toMilliseconds } from "../../sdk/duration.ts";
import { MAX_STEP_OUTPUT_BYTES } from "../../sdk/output.ts";
import { completedOutcome, type RunOutcome, type StepKind, type StepRecord } from "../../sdk/run.ts";
import { isRetryAhead, type StepIdentity } from "../../sdk/runRules.ts";
import { serializeError } from "../../sdk/types.ts";
import { buildInvokeRequest, buildWaitRequest, type StepRequest } from "../../sdk/wait.ts";
import { findFunction } from "../platform/registry.ts";
import { CALL_TIMEOUT_MS, deadlineOn, formatBytes, readBounded } from "./bounds.ts";
import type { RemoteFunction } from "./function.ts";
import type { RemoteSteps } from "./remoteSteps.ts";
import { errorOf } from "./transport.ts";
import { definedOnly, isOpName, type Op, type OpName } from "./wire.ts";
import { z } from "zod";

/** A failed step's error when the app sent none that reads as one. */
const STEP_ERROR_FALLBACK = "the app reported the step failed without an error";

/** What an op's handler acts on, beside the op. */
export interface OpScope {
  steps: RemoteSteps;
  /** Plans a step to run in a request of its own (protocol §6.2). */
  plan(op: Op): void;
  /** The function whose app reported the op. */
  fn: RemoteFunction;
  /** What makes the request of a `step.fetch` (the `Gateway` op). */
  fetch: typeof fetch;
}

/** Where and when an op arrived, for its handler. */
interface OpArrival extends OpScope {
  /** The step as stored before this op, if it was. */
  stored: StepRecord | undefined;
  now: number;
  /** When the request that ran the op's step began (now for an op found otherwise). */
  startedAt: number;
  /** When the answer asked a failed step to be retried (its retry-after), if it did. */
  retryAt: number | undefined;
}

/** What a handler answers: the run's outcome when the op ends the invocation, else nothing. */
type OpResult = RunOutcome | undefined | void;
type OpHandler<K extends OpName> = (op: Op & { op: K }, at: OpArrival) => Promise<OpResult> | OpResult;

/**
 * Acts on one op an app reported (in an answer or a checkpoint); returns the run's outcome when
 * the op ends the invocation. `startedAt` is when the request that ran its step began.
 *
 * @example
 * const ended = await actOnOp(op, scope, startedAt, retryAt);
 */
export async function actOnOp(op: Op, scope: OpScope, startedAt: number, retryAt: number | undefined): Promise<RunOutcome | undefined> {
  const stored = scope.steps.get(op.id);
  if (stored && (stored.status === "completed" || stored.status === "failed") && op.op !== "RunComplete") {
    // Resolved (a wait, a child run) after this invocation began: the next one settles it (nextWake). Otherwise reported twice: nothing new.
    return undefined;
  }
  if (!isOpName(op.op)) return { type: "failed", error: { name: "UnsupportedOpError", message: `the app asked for ${op.op} (step "${nameOf(op)}"), which Stepflare does not support` } };
  return (await dispatch(op as Op & { op: OpName }, { ...scope, stored, now: scope.steps.clock.now(), startedAt, retryAt })) ?? undefined;
}

function dispatch<K extends OpName>(op: Op & { op: K }, at: OpArrival): Promise<OpResult> | OpResult {
  return opHandlers[op.op](op, at);
}

/** One handler per op the protocol names. */
const opHandlers: { [K in OpName]: OpHandler<K> } = {
  StepRun: (op, { steps, startedAt }) => steps.completed(stepOf(op), op.data, startedAt),
  Step: (op, { steps, startedAt }) => steps.completed(stepOf(op), op.data, startedAt),
  StepError: (op, { steps, startedAt, retryAt }) => steps.failed(stepOf(op), errorOf(op.error, STEP_ERROR_FALLBACK), false, startedAt, retryAt),
  StepFailed: (op, { steps, startedAt }) => steps.failed(stepOf(op), errorOf(op.error, STEP_ERROR_FALLBACK), true, startedAt, undefined),
  StepPlanned: (op, { stored, now, plan }) => {
    if (!isRetryAhead(stored, now)) plan(op);
    return undefined;
  },
  Sleep: async (op, { steps, stored, now }) => {
    if (stored?.status === "sleeping") return undefined;
    let wakeAt: number;
    try {
      wakeAt = sleepEnd(op.name ?? "", now);
    } catch (err) {
      return { type: "failed", error: serializeError(err) };
    }
    return steps.sleep({ id: op.id, name: nameOf(op) }, wakeAt, now);
  },
  WaitForEvent: (op, at) =>
    wait(op, at, "waitForEvent", () => buildWaitRequest(definedOnly({ event: op.name, timeout: timeoutOf(op.opts?.timeout, at.now) ?? "1y", if: op.opts?.if }), at.now)),
  InvokeFunction: (op, at) =>
    wait(op, at, "invoke", () => {
      const payload = (op.opts?.payload ?? {}) as { data?: Record<string, unknown> };
      // The SDK writes no timeout as "": the invoke's default.
      const timeout = op.opts?.timeout === "" ? undefined : timeoutOf(op.opts?.timeout, at.now);
      return buildInvokeRequest(definedOnly({ function: invokedFunctionId(at.fn, String(op.opts?.function_id ?? "")), data: payload.data ?? {}, timeout }), at.now);
    }),
  RunComplete: (op) => completedOutcome(op.data),
  DiscoveryRequest: (_op, { steps }) => {
    steps.progressed = true;
    return undefined;
  },
  Gateway: (op, at) => (isRetryAhead(at.stored, at.now) ? undefined : gatewayFetch(op, at)),
  // Lazy ops the SDK may send beside others: nothing for the executor to do.
  DeferAdd: () => undefined,
  DeferAbort: () => undefined,
};

/** A wait or child run: stored as waiting (the RunObject registers it), parked until its timeout or its resolution. */
async function wait(op: Op, { steps, stored }: OpArrival, kind: StepKind, build: () => StepRequest): Promise<RunOutcome | undefined> {
  if (stored?.status === "waiting") return undefined;
  let request: StepRequest;
  try {
    request = build();
  } catch (err) {
    return { type: "failed", error: serializeError(err) };
  }
  await steps.wait({ id: op.id, name: nameOf(op), kind }, request);
  return undefined;
}

/**
 * The function an `InvokeFunction` names. The SDK writes `<app>-<function>`; a function of this
 * Worker has no app, so `referenceFunction({ functionId })` from an app reaches it by its id after the calling app's prefix.
 */
function invokedFunctionId(fn: RemoteFunction, id: string): string {
  if (findFunction(id)) return id;
  const prefix = `${fn.remote.appId}-`;
  return id.startsWith(prefix) && findFunction(id.slice(prefix.length)) ? id.slice(prefix.length) : id;
}

/**
 * `step.fetch` in an app: the executor makes the request and stores the response as the step's
 * result, `{ status_code, headers, body }`, which the SDK turns back into a Response. A request
 * that fails (no answer, or none within CALL_TIMEOUT_MS) is a failed attempt; any HTTP status is a
 * result. Its body is read up to a step's output limit: past it, the step fails for good.
 */
async function gatewayFetch(op: Op, { steps, now, fetch }: OpArrival): Promise<void> {
  const step = stepOf(op);
  const request = gatewayRequestSchema.safeParse(op.opts ?? {});
  if (!request.success) return steps.failed(step, { name: "ProtocolError", message: `step "${step.name}": the Gateway op names no URL to fetch` }, true, now, undefined);
  const { url, method, headers, body } = request.data;
  const origin = new URL(url).origin;
  const deadline = deadlineOn(steps.clock, CALL_TIMEOUT_MS, `step.fetch: ${origin} did not answer`, "a step.fetch");
  try {
    const response = await fetch(url, { method, headers, signal: deadline.signal, ...(body === undefined || method === "GET" || method === "HEAD" ? {} : { body }) });
    const text = await readBounded(response.body, MAX_STEP_OUTPUT_BYTES, deadline.signal, response.headers.get("content-length"));
    if (!text.ok) {
      const message = `step.fetch: the response from ${origin} is over ${formatBytes(MAX_STEP_OUTPUT_BYTES)}, the limit of a step's output: fetch it in your app and keep a reference`;
      return steps.failed(step, { name: "NonRetriableError", message }, true, now, undefined);
    }
    const data = { status_code: response.status, headers: Object.fromEntries(response.headers), body: text.text };
    return steps.completed(step, data, now);
  } catch (err) {
    const reason: unknown = deadline.signal.aborted ? deadline.signal.reason : err;
    return steps.failed(step, serializeError(reason), false, now, undefined);
  } finally {
    deadline.clear();
  }
}

/** A `Gateway` op's request, as the SDK's `step.fetch` writes it. */
const gatewayRequestSchema = z.object({
  url: z.string().url(),
  method: z.string().default("GET"),
  headers: z.record(z.string(), z.string()).default({}),
  body: z.string().optional(),
});

/**
 * An op's timeout as the SDK writes it, as a duration from `now`: "1d2h3m4s" (`""` for 0), or an
 * ISO time for a `Date` (its `timeStr` writes a Date as `toISOString()`), which is the time left until
 * then (0 once it has passed); undefined when there is none.
 */
function timeoutOf(value: unknown, now: number): string | number | undefined {
  if (value === "") return 0;
  if (typeof value === "string") {
    const at = isoTime(value);
    return at === undefined ? value : Math.max(0, at - now);
  }
  return typeof value === "number" ? value : undefined;
}

/** A Sleep op's `name`: a duration ("1d2h3m4s"; the SDK writes a sleep of 0 as "") or an ISO time. */
function sleepEnd(name: string, now: number): number {
  if (name === "") return now;
  return isoTime(name) ?? now + toMilliseconds(name);
}

/** The epoch ms of an ISO 8601 time ("2026-05-01T09:00:00.000Z"), or undefined for anything else. */
function isoTime(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** A step's name as the app's code wrote it. */
export function nameOf(op: Op): string {
  return op.userland?.id ?? op.displayName ?? op.name ?? op.id;
}

/** The step an op names, as the executor stores it. */
export function stepOf(op: Op): StepIdentity {
  return { id: op.id, name: nameOf(op), kind: kindOf(op) };
}

function kindOf(op: Op): StepKind {
  if (op.op === "Gateway") return "fetch";
  return op.opts?.type === "step.sendEvent" ? "sendEvent" : "run";
}
