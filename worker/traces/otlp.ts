import { SpanKind, SpanStatusCode, TraceFlags } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { TraceExportConfig } from "./config.ts";
import type { TraceSpan } from "./spans.ts";

// A run's trace on the wire: OTLP/HTTP with binary protobuf, encoded by OpenTelemetry's own
// serializer (@opentelemetry/otlp-transformer, whose encoder is plain TypeScript over Uint8Array:
// no Node module, no eval, so it runs in workerd).

type ReadableSpan = Parameters<typeof ProtobufTraceSerializer.serializeRequest>[0][number];

/** How long a collector may take to answer before the export counts as failed (and is tried again later). */
export const EXPORT_TIMEOUT_MS = 10_000;

const resource = resourceFromAttributes({ "service.name": "stepflare" });
const scope = { name: "stepflare" };
const STATUS_CODES = { unset: SpanStatusCode.UNSET, ok: SpanStatusCode.OK, error: SpanStatusCode.ERROR } as const;

/** The body of an OTLP/HTTP traces request (ExportTraceServiceRequest, binary protobuf) holding `spans`. */
export function encodeTrace(spans: TraceSpan[]): Uint8Array {
  const body = ProtobufTraceSerializer.serializeRequest(spans.map(toReadableSpan));
  if (!body) throw new Error("the OTLP serializer produced no body for the run's trace");
  return body;
}

function toReadableSpan(span: TraceSpan): ReadableSpan {
  const context = { traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED };
  return {
    name: span.name,
    kind: SpanKind.INTERNAL,
    spanContext: () => context,
    ...(span.parentSpanId ? { parentSpanContext: { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: false } } : {}),
    startTime: hrTime(span.startMs),
    endTime: hrTime(span.endMs),
    duration: hrTime(span.endMs - span.startMs),
    ended: true,
    status: { code: STATUS_CODES[span.status.code], ...(span.status.message ? { message: span.status.message } : {}) },
    attributes: span.attributes,
    links: [],
    events: span.events.map((event) => ({ name: event.name, time: hrTime(event.timeMs), attributes: event.attributes })),
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/** Milliseconds since the epoch as OpenTelemetry's [seconds, nanoseconds]. */
function hrTime(ms: number): [number, number] {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1_000_000)];
}

/** What came of sending a trace: taken, worth another try later, or refused for good (a retry would be refused too). */
export type ExportResult = { type: "delivered" } | { type: "retry"; reason: string } | { type: "refused"; reason: string };

/**
 * Sends an encoded trace to the collector. Per OTLP/HTTP, 429, 502, 503 and 504 (and no answer at
 * all) are worth another try; any other status but a 2xx is a refusal.
 */
export async function sendTrace(config: TraceExportConfig, body: Uint8Array): Promise<ExportResult> {
  let response: Response;
  try {
    response = await fetch(config.endpoint, {
      method: "POST",
      headers: { ...config.headers, "content-type": "application/x-protobuf" },
      body,
      signal: AbortSignal.timeout(EXPORT_TIMEOUT_MS),
    });
  } catch (err) {
    return { type: "retry", reason: String(err) };
  }
  // The body is read (and dropped) so the connection is freed.
  const text = await response.text().catch(() => "");
  if (response.ok) return { type: "delivered" };
  const reason = `${response.status} ${text.slice(0, 200)}`.trim();
  return [429, 502, 503, 504].includes(response.status) ? { type: "retry", reason } : { type: "refused", reason };
}
