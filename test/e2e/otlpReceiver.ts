/**
 * An OTLP/HTTP traces receiver for tests: a node:http server on a free port of 127.0.0.1 that
 * decodes each binary-protobuf ExportTraceServiceRequest with OpenTelemetry's own `.proto` files
 * (test/fixtures/otlp) and keeps its spans. It can be closed and opened again on the same port, to
 * play a collector that is down for a while.
 */
import { createServer, type Server } from "node:http";
import path from "node:path";
import protobuf from "protobufjs";
import { freePort } from "../../bench/lib/processes.mjs";

const PROTOS = path.resolve(import.meta.dirname, "../fixtures/otlp");

/** A span as the receiver decoded it: ids in hex, times in epoch ms, attributes as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  status: { code: string; message: string };
  events: { name: string; attributes: Record<string, unknown> }[];
  resource: Record<string, unknown>;
  scope: string;
}

let requestType: protobuf.Type | undefined;

/** OTLP's ExportTraceServiceRequest, loaded from the official definitions. */
function exportRequestType(): protobuf.Type {
  if (requestType) return requestType;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS, target);
  root.loadSync("opentelemetry/proto/collector/trace/v1/trace_service.proto");
  requestType = root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
  return requestType;
}

type AnyValue = { stringValue?: string; boolValue?: boolean; intValue?: string; doubleValue?: number; arrayValue?: { values?: AnyValue[] } };
type KeyValue = { key: string; value: AnyValue };

function plain(value: AnyValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(plain);
  return undefined;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, plain(kv.value)]));
}

/** The spans of one OTLP/HTTP traces request body (binary protobuf). */
export function decodeTraceRequest(body: Uint8Array): ReceivedSpan[] {
  const type = exportRequestType();
  const request = type.toObject(type.decode(body), { longs: String, enums: String, bytes: String, oneofs: false }) as {
    resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: Record<string, unknown>[] }[] }[];
  };
  const hex = (base64: unknown) => Buffer.from(String(base64 ?? ""), "base64").toString("hex");
  const ms = (nanos: unknown) => Number(BigInt(String(nanos ?? "0")) / 1_000_000n);
  return (request.resourceSpans ?? []).flatMap((resourceSpans) =>
    (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span) => {
        const status = (span.status ?? {}) as { code?: string; message?: string };
        return {
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: String(span.name),
          kind: String(span.kind),
          startMs: ms(span.startTimeUnixNano),
          endMs: ms(span.endTimeUnixNano),
          attributes: attributesOf(span.attributes as KeyValue[] | undefined),
          status: { code: status.code ?? "STATUS_CODE_UNSET", message: status.message ?? "" },
          events: ((span.events ?? []) as { name: string; attributes?: KeyValue[] }[]).map((event) => ({ name: event.name, attributes: attributesOf(event.attributes) })),
          resource: attributesOf(resourceSpans.resource?.attributes),
          scope: scopeSpans.scope?.name ?? "",
        };
      }),
    ),
  );
}

export interface OtlpReceiver {
  /** The traces endpoint to give STEPFLARE_OTLP_ENDPOINT. */
  endpoint: string;
  /** Every span received, in arrival order (a span sent twice is here twice). */
  spans: ReceivedSpan[];
  /** The headers of every request received. */
  headers: Record<string, string | string[] | undefined>[];
  /** Stops listening (connections are refused) until `open()`. */
  close(): Promise<void>;
  open(): Promise<void>;
}

/** Starts a receiver on a free port (closed at first if `closed`: the port is kept for `open()`). */
export async function startOtlpReceiver(options: { closed?: boolean } = {}): Promise<OtlpReceiver> {
  const port = await freePort();
  const spans: ReceivedSpan[] = [];
  const headers: OtlpReceiver["headers"] = [];
  let server: Server | undefined;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          if (req.method !== "POST" || req.url !== "/v1/traces" || req.headers["content-type"] !== "application/x-protobuf") {
            res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: `unexpected ${req.method} ${req.url} (${req.headers["content-type"]})` }));
            return;
          }
          headers.push(req.headers);
          spans.push(...decodeTraceRequest(Buffer.concat(chunks)));
          // An empty ExportTraceServiceResponse: full success.
          res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
        });
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
      server = undefined;
    });
  if (!options.closed) await open();
  return { endpoint: `http://127.0.0.1:${port}/v1/traces`, spans, headers, close, open };
}
