/**
 * Traces out (docs/production.md, "Tracing"): `wrangler dev` with STEPFLARE_OTLP_ENDPOINT set to an
 * OTLP/HTTP receiver in this process, which decodes what arrives with OpenTelemetry's `.proto`
 * files. A run with a retried step, a sleep and a wait arrives as one trace; runs that end while
 * the receiver is down arrive once it is back, each span once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { traceIdOf } from "../../worker/traces/spans.ts";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "./otlpReceiver.ts";
import { stepflareApi } from "./stepflareApi.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

let dev: DevServer;
let receiver: OtlpReceiver;
let api: ReturnType<typeof stepflareApi>;
const unique = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  dev = await startDevServer(["wrangler.toml"], "/v1/functions", {
    vars: { STEPFLARE_OTLP_ENDPOINT: receiver.endpoint, STEPFLARE_OTLP_HEADERS: "authorization=Bearer test-token,x-team=ops" },
  });
  api = stepflareApi(dev);
});

afterAll(async () => {
  await dev?.stop();
  await receiver?.close();
});

async function send(event: { id: string; name: string; data: Record<string, unknown> }): Promise<void> {
  const { status } = await api.api("POST", "/e/dev", event);
  expect(status).toBe(200);
}

/** The spans of `runId`'s trace, once its run's span has arrived. */
function traceOf(runId: string): Promise<ReceivedSpan[]> {
  const traceId = traceIdOf(runId);
  return waitFor(`the trace of run ${runId}`, 90_000, dev, async () => {
    const spans = receiver.spans.filter((span) => span.traceId === traceId);
    return spans.some((span) => span.parentSpanId === "") ? spans : undefined;
  });
}

describe("a run's trace over OTLP/HTTP", () => {
  it("has the run's span as parent of two attempts of a retried step (the first with its error), a sleep and a wait", async () => {
    const eventId = `traces-verify-${unique}`;
    const userId = `u-${unique}`;
    await send({ id: eventId, name: "app/user.registered", data: { userId, email: "ada@example.com" } });
    const { body } = await waitFor("the run waiting for verification", 45_000, dev, async () => {
      const runs = await api.api<{ data: { run_id: string; function_id: string }[] }>("GET", `/v1/events/${eventId}/runs`);
      const run = runs.body.data?.find((candidate) => candidate.function_id === "verify-user");
      if (!run) return undefined;
      const detail = await api.api<{ data: { run_id: string; steps: { name: string }[] } }>("GET", `/v1/runs/${run.run_id}`);
      return detail.body.data.steps.some((step) => step.name === "wait-for-verification") ? detail : undefined;
    });
    const runId = body.data.run_id;
    const verifiedId = `traces-verified-${unique}`;
    await send({ id: verifiedId, name: "app/user.verified", data: { userId } });
    expect(await api.finished(eventId, "verify-user")).toMatchObject({ status: "Completed", output: { verified: true } });

    const spans = await traceOf(runId);
    const root = spans.find((span) => span.parentSpanId === "")!;
    expect(root).toMatchObject({
      name: "verify-user",
      status: { code: "STATUS_CODE_OK" },
      attributes: { "stepflare.run.id": runId, "stepflare.function.id": "verify-user", "stepflare.event.id": eventId, "stepflare.event.name": "app/user.registered", "stepflare.run.status": "Completed" },
      resource: { "service.name": "stepflare" },
    });
    const children = spans.filter((span) => span !== root);
    expect(children.every((span) => span.parentSpanId === root.spanId)).toBe(true);
    expect(children.map((span) => span.name)).toEqual(["send-welcome", "send-welcome", "rest", "wait-for-verification"]);
    const [failed, succeeded, rest, wait] = children;
    expect(failed).toMatchObject({ status: { code: "STATUS_CODE_ERROR", message: "RetryAfterError: the mail service is warming up" }, attributes: { "stepflare.step.kind": "run", "stepflare.step.attempt": 0 } });
    expect(failed!.events).toMatchObject([{ name: "exception", attributes: { "exception.type": "RetryAfterError", "exception.message": "the mail service is warming up" } }]);
    expect(succeeded).toMatchObject({ status: { code: "STATUS_CODE_OK" }, attributes: { "stepflare.step.attempt": 1 }, events: [] });
    // The retry came after the failed attempt, as RetryAfterError asked (a second later).
    expect(succeeded!.startMs).toBeGreaterThanOrEqual(failed!.endMs);
    expect(rest).toMatchObject({ attributes: { "stepflare.step.kind": "sleep" } });
    expect(wait).toMatchObject({ attributes: { "stepflare.step.kind": "waitForEvent", "stepflare.wait.events": ["app/user.verified"], "stepflare.wait.received.ids": [verifiedId], "stepflare.wait.timed_out": false } });
    for (const span of spans) expect(span.startMs).toBeLessThanOrEqual(span.endMs);
    expect(receiver.headers.at(-1)).toMatchObject({ authorization: "Bearer test-token", "x-team": "ops", "content-type": "application/x-protobuf" });
  });

  it("exports the runs that ended while the collector was down once it is back, each span once", async () => {
    await receiver.close();
    const eventIds = [1, 2, 3].map((i) => `traces-down-${i}-${unique}`);
    for (const id of eventIds) await send({ id, name: "demo/hello", data: { name: id } });
    const runs = await Promise.all(eventIds.map((id) => api.finished(id, "hello")));
    expect(runs.map((run) => run.status)).toEqual(["Completed", "Completed", "Completed"]);
    // Each run tried its collector once already, and found it down.
    await waitFor("the runs' failed exports", 30_000, dev, async () => (runs.every((run) => failedExport(run.run_id)) ? true : undefined));
    expect(runs.some((run) => receiver.spans.some((span) => span.traceId === traceIdOf(run.run_id)))).toBe(false);

    await receiver.open();
    const traces = await Promise.all(runs.map((run) => traceOf(run.run_id)));
    for (const [i, spans] of traces.entries()) {
      expect(spans.map((span) => span.name)).toEqual(["hello", "greet"]);
      expect(spans[0]!.attributes).toMatchObject({ "stepflare.event.id": eventIds[i], "stepflare.function.id": "hello" });
    }
    // A run that ends now is exported at once; by then none of the others has been sent again.
    const lastId = `traces-after-${unique}`;
    await send({ id: lastId, name: "demo/hello", data: {} });
    await traceOf((await api.finished(lastId, "hello")).run_id);
    const spanIds = receiver.spans.map((span) => span.spanId);
    expect(new Set(spanIds).size).toBe(spanIds.length);
  });
});

/** The run's log has the warning of an export the collector did not take. */
function failedExport(runId: string): boolean {
  return dev
    .log()
    .split("\n")
    .some((line) => line.includes(`"run_id":"${runId}"`) && line.includes("could not export the run's trace; will retry"));
}
