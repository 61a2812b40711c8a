import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eventually, finishedRuns, getRun, request, runIdOf, runsOf, sendEvents, uniqueKey } from "./helpers.ts";
import { shape, SseReader, type StreamedEvent } from "./sse.ts";

/** Subscribes to a run's stream, as `curl -N` or an EventSource would. */
async function subscribe(runId: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const response = await request(`/v1/runs/${runId}/stream`, { headers: { accept: "text/event-stream", ...headers } });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
  return new SseReader(response);
}

/** Waits until the run's wait step `name` waits and its wait is in the waits index, so an event now resolves it. */
async function waitsAt(runId: string, name: string): Promise<void> {
  await eventually(async () => ((await getRun(runId)).steps?.find((step) => step.name === name)?.status === "Waiting" ? true : undefined), 15_000, `step ${name} waiting`);
  await eventually(async () => {
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM waits WHERE run_id = ?1").bind(runId).first<{ n: number }>();
    return (row?.n ?? 0) > 0 ? true : undefined;
  }, 15_000, `the wait of ${runId} in the index`);
}

const has = (what: string) => (events: StreamedEvent[]) => events.some((event) => shape(event) === what);

/** Ids only grow along one stream. */
function expectIncreasingIds(events: StreamedEvent[]): void {
  const ids = events.map((event) => Number(event.id));
  expect(ids.every((id, i) => Number.isSafeInteger(id) && (i === 0 || id > ids[i - 1]!))).toBe(true);
}

describe("GET /v1/runs/:runId/stream", () => {
  it("sends two subscribers the same events; one that joins mid-run gets the history, then the same live events, then end", async () => {
    const key = uniqueKey("stream");
    const [eventId] = await sendEvents({ name: "test/stream.two-waits", data: { key } });
    const runId = await runIdOf(eventId!);
    await waitsAt(runId, "start");
    const [a, b] = [await subscribe(runId), await subscribe(runId)];
    await Promise.all([a.until(has("step start Waiting"), "a's history"), b.until(has("step start Waiting"), "b's history")]);

    await sendEvents({ name: "test/stream.start", data: { key } });
    await waitsAt(runId, "go");
    // Step "one" has completed and the run waits: a late joiner.
    const late = await subscribe(runId);
    await late.until(has("step go Waiting"), "the late joiner's history");
    await sendEvents({ name: "test/stream.go", data: { key } });
    const [seenByA, seenByB, seenLate] = await Promise.all([a.ended, b.ended, late.ended]);

    const history = ["run Running", "step start Waiting"];
    const live = ["step start Completed", "step one Completed", 'publish progress {"done":1}', "step go Waiting", "step go Completed", 'publish progress {"done":2}', "step two Completed", "end Completed"];
    expect(seenByA.map(shape)).toEqual([...history, ...live]);
    expect(seenByB.map(shape)).toEqual(seenByA.map(shape));
    // The live events are the same events, ids included; only the history is each subscriber's own.
    expect(seenByB.slice(2)).toEqual(seenByA.slice(2));
    expect(seenLate.map(shape)).toEqual(["run Running", "step start Completed", "step one Completed", 'publish progress {"done":1}', "step go Waiting", ...live.slice(4)]);
    expect(seenLate.slice(5)).toEqual(seenByA.slice(6));
    // History and live events show a step the same way (the view of GET /v1/runs/:id).
    expect(seenLate[2]!.data).toEqual(seenByA[3]!.data);
    expect(seenLate[2]!.data).toMatchObject({ name: "one", kind: "run", status: "Completed", output: 1, attempts: 1 });
    for (const events of [seenByA, seenByB, seenLate]) expectIncreasingIds(events);
    expect(seenByA.at(-1)!.data).toMatchObject({ run_id: runId, status: "Completed", output: { one: 1, two: 2 } });
  });

  it("delivers a handler's messages in order, each once, across the replay after a sleep", async () => {
    const key = uniqueKey("progress");
    const [eventId] = await sendEvents({ name: "test/stream.progress", data: { key } });
    const runId = await runIdOf(eventId!);
    await waitsAt(runId, "start");
    const subscriber = await subscribe(runId);
    await subscriber.until(has("step start Waiting"), "the history");
    await sendEvents({ name: "test/stream.start", data: { key } });
    const events = await subscriber.ended;

    const published = events.filter((event) => event.event === "publish");
    expect(published.map((event) => event.data)).toEqual([0, 1, 2, 3, 4].map((i) => ({ id: expect.any(String), topic: "progress", data: { i }, at: expect.any(String) })));
    expect(new Set(published.map((event) => (event.data as { id: string }).id)).size).toBe(5);
    // The sleep, as stored, and once it is over (the invocation it wakes says so).
    expect(events.filter((event) => (event.data as { name?: string }).name === "nap").map(shape)).toEqual(["step nap Sleeping", "step nap Completed"]);
    expect(events.at(-1)!.data).toMatchObject({ status: "Completed", output: "published" });
    // The messages are steps of the run, as GET /v1/runs/:id shows it.
    const steps = (await getRun(runId)).steps!.filter((step) => step.kind === "publish");
    expect(steps.map((step) => step.name)).toEqual(["progress", "progress:1", "progress:2", "progress:3", "progress:4"]);
  });

  it("sends the history and end of a run that has finished, and closes the stream", async () => {
    const [eventId] = await sendEvents({ name: "test/parallel", data: {} });
    const run = (await finishedRuns(eventId!)).get("parallel")!;
    const events = await (await subscribe(run.run_id)).ended;
    expect(shape(events[0]!)).toBe("run Completed");
    expect(events.slice(1, -1).map(shape).sort()).toEqual(["step long Completed", "step short Completed", "step square Completed", "step square:1 Completed", "step square:2 Completed"]);
    expect(events.at(-1)).toMatchObject({ event: "end", data: { run_id: run.run_id, status: "Completed", output: [1, 4, 9] } });
  });

  it("ends when the run is cancelled", async () => {
    const key = uniqueKey("cancel");
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key } });
    const runId = await runIdOf(eventId!);
    const subscriber = await subscribe(runId);
    await subscriber.until(has("step long-wait Sleeping"), "the sleep");
    expect((await request(`/v1/runs/${runId}`, { method: "DELETE" })).status).toBe(200);
    const events = await subscriber.ended;
    expect(events.at(-1)).toMatchObject({ event: "end", data: { status: "Cancelled" } });
    expect(events.some((event) => shape(event) === "step after Completed")).toBe(false);
  });

  it("resumes after Last-Event-ID without the history, and a subscriber that hangs up leaves the others be", async () => {
    const key = uniqueKey("resume");
    const [eventId] = await sendEvents({ name: "test/stream.two-waits", data: { key } });
    const runId = await runIdOf(eventId!);
    await waitsAt(runId, "start");
    const leaving = await subscribe(runId);
    const staying = await subscribe(runId);
    const seen = await leaving.until(has("step start Waiting"), "the history");
    const lastId = seen.at(-1)!.id!;
    await leaving.cancel();

    await sendEvents({ name: "test/stream.start", data: { key } });
    await waitsAt(runId, "go");
    const resumed = await subscribe(runId, { "last-event-id": lastId });
    await resumed.until(has("step go Waiting"), "the missed events");
    // An id this object never handed out (or one from before it restarted): the history again.
    const unknown = await subscribe(runId, { "last-event-id": "42" });
    await unknown.until(has("step go Waiting"), "the history");
    await sendEvents({ name: "test/stream.go", data: { key } });

    const [missed, again, all] = await Promise.all([resumed.ended, unknown.ended, staying.ended]);
    expect(missed.map(shape)).toEqual(["step start Completed", "step one Completed", 'publish progress {"done":1}', "step go Waiting", "step go Completed", 'publish progress {"done":2}', "step two Completed", "end Completed"]);
    expect(missed).toEqual(all.slice(2));
    expect(shape(again[0]!)).toBe("run Running");
    expect(all.at(-1)).toMatchObject({ event: "end", data: { status: "Completed" } });
  });

  it("answers 404 with a JSON error for a run it does not know", async () => {
    for (const id of ["0123456789abcdef0123456789abcdef", "not-a-run-id"]) {
      const response = await request(`/v1/runs/${id}/stream`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: `no run with id "${id}"` });
    }
  });

  it("sends a skipped run (no object) as its run and its end", async () => {
    const user = uniqueKey("user");
    const ids = await sendEvents([1, 2, 3].map((n) => ({ name: "test/flow.rate-limited", data: { user, n } })));
    const skipped = await eventually(async () => {
      const runs = (await Promise.all(ids.map((id) => runsOf(id)))).flat();
      return runs.find((run) => run.status === "Skipped");
    }, 20_000, "the skipped run");
    const events = await (await subscribe(skipped.run_id)).ended;
    expect(events.map(shape)).toEqual(["run Skipped", "end Skipped"]);
  });
});
