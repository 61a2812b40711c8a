import { z } from "zod";
import type { Env } from "../platform/env.ts";
import { StepflareError } from "../platform/errors.ts";
import { createLogger } from "../platform/logger.ts";

// Where a run's trace goes: STEPFLARE_OTLP_ENDPOINT and STEPFLARE_OTLP_HEADERS, checked once per isolate.

/** The collector a run's trace is exported to. */
export interface TraceExportConfig {
  /** The OTLP/HTTP traces URL, as given (the path included: `/v1/traces` is not added). */
  endpoint: string;
  headers: Record<string, string>;
}

const endpointSchema = z
  .string()
  .trim()
  .pipe(z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL, such as https://collector.example/v1/traces" }));

// A header's name is an HTTP token; its value any visible text (OTEL_EXPORTER_OTLP_HEADERS percent-encodes the rest).
const headerSchema = z.string().regex(/^\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*=[^]*$/, "must be name=value");

const headersSchema = z
  .string()
  .transform((raw) => raw.split(",").filter((pair) => pair.trim() !== ""))
  .pipe(z.array(headerSchema))
  .transform((pairs) => Object.fromEntries(pairs.map((pair) => splitHeader(pair))));

function splitHeader(pair: string): [string, string] {
  const at = pair.indexOf("=");
  return [pair.slice(0, at).trim().toLowerCase(), decodeURIComponent(pair.slice(at + 1).trim())];
}

/**
 * Reads the trace export's settings: undefined when no endpoint is set (a run then exports nothing
 * and writes nothing for it). Throws a StepflareError (`config.invalid`) that names the setting at
 * fault and what it must look like; a header's value is never shown.
 *
 * @example
 * parseTraceExport({ STEPFLARE_OTLP_ENDPOINT: "http://127.0.0.1:4318/v1/traces", STEPFLARE_OTLP_HEADERS: "authorization=Bearer x" });
 * // { endpoint: "http://127.0.0.1:4318/v1/traces", headers: { authorization: "Bearer x" } }
 */
export function parseTraceExport(env: Pick<Env, "STEPFLARE_OTLP_ENDPOINT" | "STEPFLARE_OTLP_HEADERS">): TraceExportConfig | undefined {
  const rawEndpoint = env.STEPFLARE_OTLP_ENDPOINT;
  if (rawEndpoint === undefined || rawEndpoint.trim() === "") {
    if (env.STEPFLARE_OTLP_HEADERS) throw new StepflareError("config.invalid", "STEPFLARE_OTLP_HEADERS is set but STEPFLARE_OTLP_ENDPOINT is not: set the endpoint too, or remove the headers");
    return undefined;
  }
  const endpoint = endpointSchema.safeParse(rawEndpoint);
  if (!endpoint.success) throw new StepflareError("config.invalid", `STEPFLARE_OTLP_ENDPOINT ${endpoint.error.issues[0]?.message ?? "is invalid"}`);
  let headers: Record<string, string> = {};
  if (env.STEPFLARE_OTLP_HEADERS !== undefined) {
    const parsed = safeHeaders(env.STEPFLARE_OTLP_HEADERS);
    if (!parsed.ok) throw new StepflareError("config.invalid", `STEPFLARE_OTLP_HEADERS ${parsed.message}: write name=value pairs separated by commas (authorization=Bearer abc,x-team=ops)`);
    headers = parsed.headers;
  }
  return { endpoint: endpoint.data, headers };
}

function safeHeaders(raw: string): { ok: true; headers: Record<string, string> } | { ok: false; message: string } {
  try {
    const result = headersSchema.safeParse(raw);
    if (result.success) return { ok: true, headers: result.data };
    // Which pair is wrong, by position: its text may hold a secret.
    const index = result.error.issues[0]?.path[0];
    return { ok: false, message: typeof index === "number" ? `pair ${index + 1} is not name=value` : "is invalid" };
  } catch {
    return { ok: false, message: "holds a value that is not valid percent-encoding" };
  }
}

/** The settings last read, so a bad one is logged once per isolate, not at every run's end. */
let checked: { endpoint: string | undefined; headers: string | undefined; config: TraceExportConfig | undefined } | undefined;

/**
 * The trace export's settings, or undefined when none is set or they are invalid: a bad setting is
 * logged (once per isolate) and runs go on without traces, never failing for it.
 *
 * @example
 * const config = traceExport(env);
 * if (config) entries.push({ kind: "trace" });
 */
export function traceExport(env: Pick<Env, "STEPFLARE_OTLP_ENDPOINT" | "STEPFLARE_OTLP_HEADERS">): TraceExportConfig | undefined {
  if (checked && checked.endpoint === env.STEPFLARE_OTLP_ENDPOINT && checked.headers === env.STEPFLARE_OTLP_HEADERS) return checked.config;
  let config: TraceExportConfig | undefined;
  try {
    config = parseTraceExport(env);
  } catch (err) {
    createLogger().error(`runs export no traces: ${(err as Error).message}`);
  }
  checked = { endpoint: env.STEPFLARE_OTLP_ENDPOINT, headers: env.STEPFLARE_OTLP_HEADERS, config };
  return config;
}
