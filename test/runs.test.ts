import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { QueueMessage } from "../worker/queue/messages.ts";
import type { RunObject } from "../worker/runs/RunObject.ts";
import { tick } from "../worker/schedule/tick.ts";
import { INLINE_MAX_EVENTS } from "../worker/dispatch/inline.ts";
import { EVENTS_PER_MESSAGE } from "../worker/queue/send.ts";
import { consumeBatch } from "../worker/dispatch/consumer.ts";
import { instrument } from "../worker/platform/bindings.ts";
import { runIdFor } from "../worker/platform/runId.ts";
import { engineEventId } from "../sdk/event.ts";
import worker from "./worker.ts";
import { effectCount, eventually, finishedRuns, getRun, request, runsOf, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";

describe("failures", () => {
  it("fails a run after its retries and runs onFailure as a run of its own with the event and error", async () => {
    const key = uniqueKey("failing");
    const [eventId] = await sendEvents({ name: "test/failing", data: { key } });
    const failed = (await finishedRuns(eventId!)).get("failing")!;
    expect(failed.status).toBe("Failed");
    expect(failed.error).toMatchObject({ name: "RetryAfterError", message: "always broken" });

    // The failure event leaves the run's outbox right after the run ends.
    const failureEventId = engineEventId(failed.run_id, "failed");
    const event = await eventually(async () => {
      const response = await request(`/v1/events/${failureEventId}`);
      return response.ok ? ((await response.json()) as { data: { name: string; data: Record<string, unknown> } }) : undefined;
    });
    expect(event.data.name).toBe("inngest/function.failed");
    expect(event.data.data).toMatchObject({ function_id: "failing", run_id: failed.run_id, event: { id: eventId, data: { key } } });

    const onFailure = (await finishedRuns(failureEventId)).get("failing-failure")!;
    expect(onFailure).toMatchObject({ status: "Completed", output: { failedRun: failed.run_id } });
    expect(await effectCount(`${key}:onFailure:always broken`)).toBe(1);
  });
});

describe("cancellation", () => {
  it("cancels a sleeping run: status Cancelled, and its later steps never run", async () => {
    const key = uniqueKey("cancel");
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key } });
    const run = await eventually(async () => {
      const [found] = await runsOf(eventId!);
      return found && (await effectCount(`${key}:before`)) === 1 ? found : undefined;
    });
    const response = await request(`/v1/runs/${run.run_id}`, { method: "DELETE" });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { data: RunJson }).data.status).toBe("Cancelled");

    // Wake it as if the hour had passed: a cancelled run does nothing.
    const stub = env.RUNS.get(env.RUNS.idFromName(run.run_id));
    await runInDurableObject(stub, (instance) => (instance as RunObject).alarm());
    const after = await getRun(run.run_id);
    expect(after.status).toBe("Cancelled");
    expect(after.ended_at).not.toBeNull();
    expect(await effectCount(`${key}:after`)).toBe(0);
  });
});

describe("dispatch", () => {
  it("starts nothing twice when the queue redelivers a message", async () => {
    const key = uniqueKey("redelivery");
    const [eventId] = await sendEvents({ name: "test/counted", data: { key, sleep: 0 } });
    const first = await finishedRuns(eventId!);
    const { results } = await env.DB.prepare("SELECT * FROM events WHERE id = ?1").bind(eventId).all<{ received_at: number; data: string; ts: number }>();
    const row = results[0]!;
    const body: QueueMessage = { type: "event", event: { id: eventId!, name: "test/counted", data: JSON.parse(row.data), ts: row.ts }, receivedAt: row.received_at };
    for (const _ of [1, 2]) {
      const batch = createMessageBatch<QueueMessage>("stepflare-events", [{ id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body }]);
      const ctx = createExecutionContext();
      await worker.queue!(batch, env, ctx);
      const result = await getQueueResult(batch, ctx);
      expect(result.explicitAcks).toHaveLength(1);
    }
    expect(await runsOf(eventId!)).toHaveLength(1);
    expect((await getRun(first.get("counted")!.run_id)).status).toBe("Completed");
    expect(await effectCount(`${key}:a`)).toBe(1);
  });

  it("retries a batch's unsettled messages when it runs out of time, and settles none of them after", async () => {
    const key = uniqueKey("out-of-time");
    const eventId = uniqueKey("late");
    const receivedAt = Date.now();
    const body: QueueMessage = { type: "event", event: { id: eventId, name: "test/counted", data: { key, sleep: 0 }, ts: receivedAt }, receivedAt };
    const batch = createMessageBatch<QueueMessage>("stepflare-events", [{ id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body }]);
    // No time at all: the limit passes while the dispatch still waits on D1.
    await consumeBatch(batch, instrument(env), 0);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.retryMessages.map((message: { msgId: string }) => message.msgId)).toEqual(batch.messages.map((message) => message.id));
    expect(result.explicitAcks).toEqual([]);
    // The dispatch it cut goes on and starts the run; the retried message starts nothing more.
    const runId = runIdFor("counted", eventId, receivedAt);
    await eventually(async () => ((await request(`/v1/runs/${runId}`)).status === 200 ? true : undefined), 15_000, "the run the cut dispatch started");
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toEqual([]);
  });

  it("re-enqueues an event that was stored but never dispatched (lost from the queue)", async () => {
    const key = uniqueKey("swept");
    const id = uniqueKey("lost");
    const longAgo = Date.now() - 60_000;
    // As if the process died after the D1 write and before the queue kept the message.
    await env.DB.prepare("INSERT INTO events (id, name, data, ts, received_at) VALUES (?1, 'test/fanout', ?2, ?3, ?3)")
      .bind(id, JSON.stringify({ key }), longAgo)
      .run();
    const now = Date.now();
    expect((await tick(env, now)).redispatched).toBeGreaterThanOrEqual(1);
    // Swept once: a slow event is not sent again at every tick.
    const row = await env.DB.prepare("SELECT swept_at FROM events WHERE id = ?1").bind(id).first<{ swept_at: number }>();
    expect(row?.swept_at).toBe(now);
    const runs = await finishedRuns(id, 2);
    expect(runs.get("fanout-b")).toMatchObject({ status: "Completed", output: `b:${key}` });
  });
});

describe("the tick", () => {
  it("repairs a runs index row whose end was lost with the queue", async () => {
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key: uniqueKey("index") } });
    const run = (await finishedRuns(eventId!, 2)).get("fanout-a")!;
    const indexed = () => env.DB.prepare("SELECT status, ended_at FROM runs WHERE id = ?1").bind(run.run_id).first<{ status: string; ended_at: number | null }>();
    await eventually(async () => ((await indexed())?.status === "Completed" ? true : undefined));
    // As if the process died right after the run ended, taking its queued end message along.
    await env.DB.prepare("UPDATE runs SET status = 'Running', ended_at = NULL, started_at = started_at - 120000, id_ordered = NULL WHERE id = ?1").bind(run.run_id).run();
    await tick(env);
    expect(await indexed()).toEqual({ status: "Completed", ended_at: Date.parse(run.ended_at!) });
  });
});

describe("REST API", () => {
  it("lists the registered functions with their triggers and config", async () => {
    const { data } = (await (await request("/v1/functions")).json()) as { data: { id: string; triggers: unknown[]; config: { retries: number } }[] };
    expect(data.find((f) => f.id === "counted")).toEqual({ id: "counted", name: "counted", triggers: [{ event: "test/counted" }], config: { retries: 3, stepTimeout: 600_000 }, crons: [], paused: false, stats: expect.objectContaining({ by_status: expect.any(Object), hours: expect.any(Array) }) });
    expect(data.find((f) => f.id === "failing-failure")?.triggers).toEqual([{ event: "inngest/function.failed", if: 'event.data.function_id == "failing"' }]);
  });

  it("shows a run with its steps", async () => {
    const [eventId] = await sendEvents({ name: "test/recovers", data: { key: uniqueKey("api") } });
    const run = (await finishedRuns(eventId!)).get("recovers")!;
    const full = await getRun(run.run_id);
    expect(full).toMatchObject({ run_id: run.run_id, function_id: "recovers", event_id: eventId, status: "Completed" });
    expect(full.steps).toEqual([
      expect.objectContaining({ name: "doomed", status: "Failed", attempts: 1, output: null, error: expect.objectContaining({ message: "no way" }) }),
    ]);
  });

  it("counts billable operations: DO requests and rows, D1 statements and rows, queue messages", async () => {
    type Usage = Record<"doRequests" | "doRowsWritten" | "d1Statements" | "d1RowsWritten" | "queueMessages", number>;
    const read = async () => ((await (await request("/v1/usage")).json()) as { data: Usage }).data;
    const before = await read();
    const [eventId] = await sendEvents({ name: "test/counted", data: { key: uniqueKey("usage"), sleep: 0 } });
    await finishedRuns(eventId!);
    const after = await read();
    // One run of three steps and a sleep: at least the run row, four step rows and the end.
    expect(after.doRowsWritten - before.doRowsWritten).toBeGreaterThanOrEqual(6);
    expect(after.doRequests - before.doRequests).toBeGreaterThanOrEqual(1);
    // The event row, the runs index row and the run's end.
    expect(after.d1RowsWritten - before.d1RowsWritten).toBeGreaterThanOrEqual(3);
    expect(after.d1Statements - before.d1Statements).toBeGreaterThanOrEqual(2);
    // An event sent alone is dispatched from its request, with no queue message; a request of more than
    // INLINE_MAX_EVENTS goes through the queue, EVENTS_PER_MESSAGE events a message.
    const many = Array.from({ length: 25 }, () => ({ name: "test/none", data: {} }));
    expect(many.length).toBeGreaterThan(INLINE_MAX_EVENTS);
    await sendEvents(many);
    // 3 messages (other work of the isolate may send some beside them, never one per event).
    expect((await read()).queueMessages - after.queueMessages).toBeGreaterThanOrEqual(Math.ceil(many.length / EVENTS_PER_MESSAGE));
    expect((await read()).queueMessages - after.queueMessages).toBeLessThan(many.length);
  });

  it.each([
    ["GET", "/v1/events/no-such-event"],
    ["GET", "/v1/events/no-such-event/runs"],
    ["GET", "/v1/runs/0123456789abcdef0123456789abcdef"],
    ["GET", "/v1/runs/not-a-run-id"],
    ["DELETE", "/v1/runs/0123456789abcdef0123456789abcdef"],
    ["GET", "/v1/nothing-here"],
  ])("answers %s %s for an unknown id with a JSON 404", async (method, path) => {
    const response = await request(path, { method });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: string }).error).toMatch(/no /);
  });
});

describe("values past one SQLite value's 2 MB", () => {
  it("starts a batch whose events total more than 2 MB, with all of them", async () => {
    const key = uniqueKey("large-batch");
    const ids = await sendEvents(Array.from({ length: 5 }, (_, i) => ({ name: "test/large.batched", data: { key, i, pad: "y".repeat(450_000) } })));
    const run = (await finishedRuns(ids[0]!)).get("large-batch")!;
    expect(run).toMatchObject({ status: "Completed", output: { count: 5, chars: 5 * 450_000 } });
  });

  it("sends more than 2 MB of events from one step, and refuses more than 3 MiB with the limit's name", async () => {
    const [eventId] = await sendEvents({ name: "test/large.send", data: { count: 5 } });
    const run = (await finishedRuns(eventId!)).get("large-send")!;
    expect(run.status).toBe("Completed");
    const sent = (run.output as { ids: string[] }).ids;
    expect(sent).toHaveLength(5);
    for (const id of sent) expect((await request(`/v1/events/${id}`)).status).toBe(200);

    const [tooMuch] = await sendEvents({ name: "test/large.send", data: { count: 8 } });
    const failed = (await finishedRuns(tooMuch!)).get("large-send")!;
    expect(failed.status).toBe("Failed");
    expect(JSON.stringify(failed.error)).toMatch(/the limit is 3145728 bytes \(3 MiB\) per send/);
  });
});
