import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { StepRecord } from "../../sdk/run.ts";
import type { SerializedError } from "../../sdk/types.ts";
import type { RunRecord } from "../runs/records.ts";

// What a run's trace holds, built from what its object stores once the run has ended: a span for
// the run, one per attempt of a step (with its error), one per sleep, wait or invoke. Pure: the ids
// come from the run's and steps' ids, so a trace exported twice (a crash between the collector's
// answer and the outbox's delete) has the same ids both times, and collectors keep one.

/** An attribute's value, as OpenTelemetry allows it. */
export type SpanAttribute = string | number | boolean | string[];

/** One span of a run's trace, in the engine's own terms (worker/traces/otlp.ts encodes it). */
export interface TraceSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, SpanAttribute>;
  status: { code: "unset" | "ok" | "error"; message?: string };
  /** Span events: an attempt's `exception`. */
  events: { name: string; timeMs: number; attributes: Record<string, SpanAttribute> }[];
}

/** The trace id of a run: 16 bytes of a digest of its id. */
export function traceIdOf(runId: string): string {
  return digest(`stepflare/trace/${runId}`, 16);
}

/** A span's id within a run's trace: 8 bytes of a digest of the run's id and the span's key. */
export function spanIdOf(runId: string, key: string): string {
  return digest(`stepflare/span/${runId}/${key}`, 8);
}

function digest(text: string, bytes: number): string {
  return bytesToHex(sha256(utf8ToBytes(text)).subarray(0, bytes));
}

/**
 * The spans of an ended run's trace, the run's first: its steps' spans are its children.
 *
 * @example
 * const [runSpan, ...stepSpans] = runTrace(run, [...steps.values()]);
 */
export function runTrace(run: RunRecord, steps: Iterable<StepRecord>): TraceSpan[] {
  const traceId = traceIdOf(run.id);
  const endMs = Math.max(run.endedAt ?? run.startedAt, run.startedAt);
  const trigger = run.events[0];
  const runSpan: TraceSpan = {
    traceId,
    spanId: spanIdOf(run.id, "run"),
    name: run.functionId,
    startMs: run.startedAt,
    endMs,
    attributes: {
      "stepflare.run.id": run.id,
      "stepflare.function.id": run.functionId,
      "stepflare.run.status": run.status,
      ...(trigger ? { "stepflare.event.id": trigger.id, "stepflare.event.name": trigger.name } : {}),
      ...(run.events.length > 1 ? { "stepflare.event.ids": run.events.map((event) => event.id) } : {}),
      ...(run.parent ? { "stepflare.parent.run.id": run.parent.runId } : {}),
    },
    status: run.status === "Completed" ? { code: "ok" } : run.status === "Failed" ? errorStatus(run.error) : { code: "unset" },
    events: run.status === "Failed" && run.error ? [exceptionEvent(run.error, endMs)] : [],
  };
  const spans = [runSpan];
  const child = (step: StepRecord, key: string, span: Pick<TraceSpan, "startMs" | "endMs" | "status" | "events"> & { attributes?: Record<string, SpanAttribute> }): TraceSpan => ({
    traceId,
    spanId: spanIdOf(run.id, key),
    parentSpanId: runSpan.spanId,
    name: step.name,
    ...span,
    // Never past the run's end, never before its own start.
    endMs: Math.max(span.startMs, Math.min(span.endMs, endMs)),
    attributes: { "stepflare.step.id": step.id, "stepflare.step.name": step.name, "stepflare.step.kind": step.kind, ...span.attributes },
  });
  for (const step of [...steps].sort((a, b) => a.startedAt - b.startedAt)) spans.push(...stepSpans(step, endMs, child));
  return spans;
}

type ChildSpan = (step: StepRecord, key: string, span: Pick<TraceSpan, "startMs" | "endMs" | "status" | "events"> & { attributes?: Record<string, SpanAttribute> }) => TraceSpan;

/** A step's spans: one per attempt of code the run ran, one for a step that only waited. */
function stepSpans(step: StepRecord, runEndMs: number, child: ChildSpan): TraceSpan[] {
  // Until it settled; one the run's end left unsettled (a sleep or wait still to come, a cancel) ends with the run.
  const settledMs = step.endedAt ?? Math.min(step.wakeAt ?? runEndMs, runEndMs);
  switch (step.kind) {
    case "sleep":
      return [child(step, `step/${step.id}`, { startMs: step.startedAt, endMs: settledMs, status: { code: "unset" }, events: [], attributes: step.wakeAt ? { "stepflare.sleep.until": new Date(step.wakeAt).toISOString() } : {} })];
    case "waitForEvent": {
      const received = receivedEventIds(step.output);
      const request = step.request?.type === "wait" ? step.request : undefined;
      const attributes: Record<string, SpanAttribute> = {
        ...(request ? { "stepflare.wait.events": request.conditions.map((condition) => condition.event) } : {}),
        ...(received.length > 0 ? { "stepflare.wait.received.ids": received } : {}),
        // A wait that timed out is never rewritten: it still waits, its timeout passed before the run's end.
        "stepflare.wait.timed_out": step.status === "waiting" && (step.wakeAt ?? Infinity) <= runEndMs,
      };
      return [child(step, `step/${step.id}`, { startMs: step.startedAt, endMs: settledMs, status: { code: "unset" }, events: [], attributes })];
    }
    case "invoke": {
      const request = step.request?.type === "invoke" ? step.request : undefined;
      const status = step.status === "failed" ? errorStatus(step.error) : step.status === "completed" ? ({ code: "ok" } as const) : ({ code: "unset" } as const);
      const events = step.status === "failed" && step.error ? [exceptionEvent(step.error, settledMs)] : [];
      return [child(step, `step/${step.id}`, { startMs: step.startedAt, endMs: settledMs, status, events, attributes: request ? { "stepflare.invoke.function.id": request.functionId } : {} })];
    }
    default:
      return attemptSpans(step, child);
  }
}

/** A step whose code ran: a span per attempt, each failed one with its error. */
function attemptSpans(step: StepRecord, child: ChildSpan): TraceSpan[] {
  const failed = step.failedAttempts ?? [];
  const spans = failed.map((attempt, index) =>
    child(step, `step/${step.id}/${index}`, {
      startMs: attempt.startedAt,
      endMs: attempt.endedAt,
      status: errorStatus(attempt.error),
      events: [exceptionEvent(attempt.error, attempt.endedAt)],
      attributes: { "stepflare.step.attempt": index },
    }),
  );
  if (step.status === "completed" && step.endedAt !== undefined) {
    spans.push(child(step, `step/${step.id}/${failed.length}`, { startMs: step.startedAt, endMs: step.endedAt, status: { code: "ok" }, events: [], attributes: { "stepflare.step.attempt": failed.length } }));
  }
  return spans;
}

/** The ids of the events a wait step received (one event, or `all`'s list). */
function receivedEventIds(output: unknown): string[] {
  const events = Array.isArray(output) ? output : [output];
  return events.flatMap((event) => (event && typeof event === "object" && typeof (event as { id?: unknown }).id === "string" ? [(event as { id: string }).id] : []));
}

function errorStatus(error: SerializedError | undefined): TraceSpan["status"] {
  return { code: "error", ...(error ? { message: `${error.name}: ${error.message}` } : {}) };
}

/** OpenTelemetry's `exception` span event (its semantic conventions' attribute names). */
function exceptionEvent(error: SerializedError, timeMs: number): TraceSpan["events"][number] {
  return {
    name: "exception",
    timeMs,
    attributes: { "exception.type": error.name, "exception.message": error.message, ...(error.stack ? { "exception.stacktrace": error.stack } : {}) },
  };
}
