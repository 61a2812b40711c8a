import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { faults, setFaults } from "../worker/platform/faults.ts";
import { tick } from "../worker/schedule/tick.ts";
import { INLINE_MAX_EVENTS } from "../worker/dispatch/inline.ts";
import worker from "./worker.ts";
import { finishedRuns, request, sendEvents, uniqueKey } from "./helpers.ts";

const json = { "content-type": "application/json" };

function postEvent(event: unknown): Promise<Response> {
  return request("/e/test-key", { method: "POST", headers: json, body: JSON.stringify(event) });
}

function switchFaults(body: string): Promise<Response> {
  return request("/v1/dev/faults", { method: "POST", headers: json, body });
}

/** The event log's row for `id`, read past the wrapper (the test's own binding is never faulted). */
function storedEvent(id: string): Promise<{ dispatched_at: number | null } | null> {
  return env.DB.prepare("SELECT dispatched_at FROM events WHERE id = ?1").bind(id).first();
}

afterEach(() => {
  setFaults({ d1: false, queue: false });
});

describe("the dev-mode fault switch", () => {
  it("makes the event API answer a JSON 5xx and store nothing while D1 is down, and work again after", async () => {
    const switched = await switchFaults(JSON.stringify({ d1: true }));
    expect(switched.status).toBe(200);
    expect(await switched.json()).toEqual({ data: { d1: true, queue: false } });

    const event = { id: uniqueKey("d1-down"), name: "test/counted", data: { key: uniqueKey("d1-down"), sleep: 0 } };
    const refused = await postEvent(event);
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(await refused.json()).toEqual({ error: expect.any(String) });
    expect(await storedEvent(event.id)).toBeNull();

    expect(await (await switchFaults(JSON.stringify({ d1: false }))).json()).toEqual({ data: { d1: false, queue: false } });
    const [eventId] = await sendEvents(event);
    expect((await finishedRuns(eventId!)).get("counted")?.status).toBe("Completed");
  });

  it("dispatches an event sent alone while the queue is down, from the request that accepted it", async () => {
    faults.queue = true;
    const event = { id: uniqueKey("queue-down-alone"), name: "test/fanout", data: { key: uniqueKey("queue-down-alone") } };
    expect((await postEvent(event)).status).toBe(200);
    const runs = await finishedRuns(event.id, 2);
    expect([...runs.values()].map((run) => run.status)).toEqual(["Completed", "Completed"]);
    expect((await storedEvent(event.id))?.dispatched_at).not.toBeNull();
  });

  it("keeps the events of a request the queue must carry while it is down, and the sweep dispatches them once it is back", async () => {
    // Flipped directly: the tests, the Worker and its objects share one isolate, hence one switch.
    faults.queue = true;
    // More events than a request dispatches itself: they go through the queue.
    const events = Array.from({ length: INLINE_MAX_EVENTS + 1 }, (_, i) => ({ id: uniqueKey(`queue-down-${i}`), name: "test/fanout", data: { key: uniqueKey("queue-down") } }));
    const refused = await postEvent(events);
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(await storedEvent(events[0]!.id)).toEqual({ dispatched_at: null });

    faults.queue = false;
    // As if the sweep's 30 s had passed.
    await env.DB.prepare("UPDATE events SET received_at = received_at - 60000 WHERE id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(events.map((event) => event.id))).run();
    expect((await tick(env)).redispatched).toBeGreaterThanOrEqual(events.length);
    for (const event of events) {
      const runs = await finishedRuns(event.id, 2);
      expect([...runs.values()].map((run) => run.status)).toEqual(["Completed", "Completed"]);
    }
  });


  it("answers the switch on GET, and refuses a bad body with a JSON 400 that changes nothing", async () => {
    expect(await (await request("/v1/dev/faults")).json()).toEqual({ data: { d1: false, queue: false } });
    for (const body of ["{", "null", "[true]", '{"d1":"yes"}', '{"disk":true}', '{"d1":true,"extra":1}']) {
      const response = await switchFaults(body);
      expect(response.status, body).toBe(400);
      expect(await response.json(), body).toMatchObject({ error: expect.stringMatching(/JSON|invalid fault switch/) });
    }
    expect({ ...faults }).toEqual({ d1: false, queue: false });
  });

  it("does not exist outside dev mode, where the switch changes nothing", async () => {
    const production = { ...env, STEPFLARE_DEV: undefined, STEPFLARE_EVENT_KEYS: "key-one", STEPFLARE_SIGNING_KEY: "ab".repeat(32) };
    const call = (path: string, init?: RequestInit) =>
      worker.fetch!(new Request(`http://stepflare.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, production, createExecutionContext());
    const auth = { authorization: `Bearer ${"ab".repeat(32)}` };
    for (const init of [{ headers: auth }, { method: "POST", headers: { ...auth, ...json }, body: '{"d1":true}' }]) {
      const response = await call("/v1/dev/faults", init);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: `no route for ${init.method ?? "GET"} /v1/dev/faults` });
    }
    expect(faults.d1).toBe(false);

    faults.d1 = true;
    const accepted = await call("/e/key-one", { method: "POST", headers: json, body: JSON.stringify({ name: "test/unmatched" }) });
    faults.d1 = false;
    expect(accepted.status).toBe(200);
  });
});
