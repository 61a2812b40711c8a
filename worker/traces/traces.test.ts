import { describe, expect, it } from "vitest";
import type { StepRecord } from "../../sdk/run.ts";
import { decodeTraceRequest } from "../../test/e2e/otlpReceiver.ts";
import type { RunRecord } from "../runs/records.ts";
import { parseTraceExport } from "./config.ts";
import { encodeTrace } from "./otlp.ts";
import { isTraceGivenUp, nextTraceTry } from "./schedule.ts";
import { runTrace, spanIdOf, traceIdOf } from "./spans.ts";

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 6);

function run(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id: "run-1",
    functionId: "flaky-nap",
    events: [{ id: "evt-1", name: "demo/flaky", data: {}, ts: T0 }],
    status: "Completed",
    handlerFailures: { count: 0, unitSeq: 0 },
    starts: [],
    isOpen: false,
    crashes: 0,
    output: { ok: true },
    startedAt: T0,
    listedAt: T0,
    indexedOn: 0,
    endedAt: T0 + 10_000,
    ...overrides,
  };
}

const error = { name: "Error", message: "flaky once", stack: "Error: flaky once\n    at step" };
const steps: StepRecord[] = [
  { id: "s-flaky", name: "flaky", kind: "run", status: "completed", attempts: 2, output: 1, seq: 1, failedAttempts: [{ error, startedAt: T0 + 10, endedAt: T0 + 20 }], startedAt: T0 + 1_020, endedAt: T0 + 1_030 },
  { id: "s-nap", name: "nap", kind: "sleep", status: "sleeping", attempts: 0, wakeAt: T0 + 2_000, startedAt: T0 + 1_040 },
  {
    id: "s-wait",
    name: "approval",
    kind: "waitForEvent",
    status: "completed",
    attempts: 1,
    output: { id: "evt-approve", name: "demo/approved", data: {}, ts: T0 + 3_000 },
    request: { type: "wait", conditions: [{ event: "demo/approved" }], mode: "one", since: T0 + 2_100, timeoutAt: T0 + 60_000 },
    wakeAt: T0 + 3_000,
    startedAt: T0 + 2_100,
    endedAt: T0 + 3_000,
  },
];

describe("a run's trace", () => {
  it("has the run's span as parent of a span per attempt, sleep and wait, encoded as OTLP protobuf", () => {
    const received = decodeTraceRequest(encodeTrace(runTrace(run(), steps)));
    const traceId = traceIdOf("run-1");
    const runSpanId = spanIdOf("run-1", "run");
    expect(received.map((span) => [span.name, span.spanId, span.parentSpanId])).toEqual([
      ["flaky-nap", runSpanId, ""],
      ["flaky", spanIdOf("run-1", "step/s-flaky/0"), runSpanId],
      ["flaky", spanIdOf("run-1", "step/s-flaky/1"), runSpanId],
      ["nap", spanIdOf("run-1", "step/s-nap"), runSpanId],
      ["approval", spanIdOf("run-1", "step/s-wait"), runSpanId],
    ]);
    expect(new Set(received.map((span) => span.traceId))).toEqual(new Set([traceId]));
    const [root, failed, succeeded, nap, wait] = received;
    expect(root).toMatchObject({
      startMs: T0,
      endMs: T0 + 10_000,
      kind: "SPAN_KIND_INTERNAL",
      status: { code: "STATUS_CODE_OK" },
      attributes: { "stepflare.run.id": "run-1", "stepflare.function.id": "flaky-nap", "stepflare.event.id": "evt-1", "stepflare.event.name": "demo/flaky", "stepflare.run.status": "Completed" },
      resource: { "service.name": "stepflare" },
      scope: "stepflare",
    });
    expect(failed).toMatchObject({ startMs: T0 + 10, endMs: T0 + 20, status: { code: "STATUS_CODE_ERROR", message: "Error: flaky once" }, attributes: { "stepflare.step.attempt": 0, "stepflare.step.kind": "run" } });
    expect(failed!.events).toEqual([{ name: "exception", attributes: { "exception.type": "Error", "exception.message": "flaky once", "exception.stacktrace": error.stack } }]);
    expect(succeeded).toMatchObject({ startMs: T0 + 1_020, endMs: T0 + 1_030, status: { code: "STATUS_CODE_OK" }, attributes: { "stepflare.step.attempt": 1 }, events: [] });
    // A sleep is never rewritten when it wakes: it ends at its wake time.
    expect(nap).toMatchObject({ startMs: T0 + 1_040, endMs: T0 + 2_000, attributes: { "stepflare.step.kind": "sleep" } });
    expect(wait).toMatchObject({
      startMs: T0 + 2_100,
      endMs: T0 + 3_000,
      attributes: { "stepflare.step.kind": "waitForEvent", "stepflare.wait.events": ["demo/approved"], "stepflare.wait.received.ids": ["evt-approve"], "stepflare.wait.timed_out": false },
    });
  });

  it("ends what the run's end left unsettled with the run, and marks a failed run's span with its error", () => {
    const waiting = { ...steps[2]!, status: "waiting" as const, output: undefined, endedAt: undefined, wakeAt: T0 + 4_000 };
    const spans = runTrace(run({ status: "Failed", error: { name: "StepError", message: "gave up" }, endedAt: T0 + 5_000 }), [{ ...steps[1]!, wakeAt: T0 + 90_000 }, waiting]);
    expect(spans[0]).toMatchObject({ status: { code: "error", message: "StepError: gave up" }, events: [{ name: "exception" }] });
    expect(spans[1]).toMatchObject({ name: "nap", endMs: T0 + 5_000 });
    expect(spans[2]).toMatchObject({ name: "approval", endMs: T0 + 4_000, attributes: { "stepflare.wait.timed_out": true } });
  });

  it("has the same ids each time it is built: a second export is one collectors keep once", () => {
    expect(runTrace(run(), steps)).toEqual(runTrace(run(), steps));
    expect(traceIdOf("run-1")).toMatch(/^[0-9a-f]{32}$/);
    expect(spanIdOf("run-1", "run")).toMatch(/^[0-9a-f]{16}$/);
    expect(traceIdOf("run-2")).not.toBe(traceIdOf("run-1"));
  });
});

describe("the trace export's settings", () => {
  it("are off without an endpoint, and read the OTEL_EXPORTER_OTLP_HEADERS form", () => {
    expect(parseTraceExport({})).toBeUndefined();
    expect(parseTraceExport({ STEPFLARE_OTLP_ENDPOINT: " http://127.0.0.1:4318/v1/traces ", STEPFLARE_OTLP_HEADERS: "Authorization=Bearer x,other=a%2Cb, ,x-team = ops" })).toEqual({
      endpoint: "http://127.0.0.1:4318/v1/traces",
      headers: { authorization: "Bearer x", other: "a,b", "x-team": "ops" },
    });
  });

  it("refuse a bad value with an error that names the setting and never shows a header's value", () => {
    expect(() => parseTraceExport({ STEPFLARE_OTLP_ENDPOINT: "collector:4318" })).toThrow(/^STEPFLARE_OTLP_ENDPOINT must be an http:\/\/ or https:\/\/ URL/);
    expect(() => parseTraceExport({ STEPFLARE_OTLP_ENDPOINT: "ftp://collector/v1/traces" })).toThrow(/STEPFLARE_OTLP_ENDPOINT must be an http/);
    expect(() => parseTraceExport({ STEPFLARE_OTLP_ENDPOINT: "https://c.example/v1/traces", STEPFLARE_OTLP_HEADERS: "authorization=ok,secret-token-no-equals" })).toThrow(
      "STEPFLARE_OTLP_HEADERS pair 2 is not name=value: write name=value pairs separated by commas (authorization=Bearer abc,x-team=ops)",
    );
    expect(() => parseTraceExport({ STEPFLARE_OTLP_ENDPOINT: "https://c.example/v1/traces", STEPFLARE_OTLP_HEADERS: "a=%E0%A4%A" })).toThrow(/not valid percent-encoding/);
    expect(() => parseTraceExport({ STEPFLARE_OTLP_HEADERS: "a=b" })).toThrow(/STEPFLARE_OTLP_ENDPOINT is not/);
  });
});

describe("the trace export's retries", () => {
  it("wait as long again as it has been since the run's end, 5 s to 10 min, and give up after an hour", () => {
    expect(nextTraceTry(T0, T0) - T0).toBe(5_000);
    expect(nextTraceTry(T0, T0 + 40_000) - T0).toBe(80_000);
    expect(nextTraceTry(T0, T0 + 50 * 60_000) - T0).toBe(60 * 60_000);
    expect(isTraceGivenUp(T0, T0 + 59 * 60_000)).toBe(false);
    expect(isTraceGivenUp(T0, T0 + 60 * 60_000)).toBe(true);
  });
});
