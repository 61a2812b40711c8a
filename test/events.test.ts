import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "./worker.ts";
import { finishedRuns, request, runsOf, sendEvents, uniqueKey } from "./helpers.ts";

async function receivedAtOf(id: string): Promise<number | undefined> {
  const row = await env.DB.prepare("SELECT received_at FROM events WHERE id = ?1").bind(id).first<{ received_at: number }>();
  return row?.received_at;
}

async function storedWithName(name: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE name = ?1").bind(name).first<{ n: number }>();
  return row?.n ?? 0;
}

function post(body: BodyInit, contentType = "application/json"): Promise<Response> {
  return request("/e/some-key", { method: "POST", headers: { "content-type": contentType }, body });
}

describe("POST /e/:key", () => {
  it("accepts one event or an array and answers ids in order once they are stored", async () => {
    const name = uniqueKey("test/accept");
    const [single] = await sendEvents({ name, data: { n: 1 } });
    const many = await sendEvents([{ name, data: { n: 2 } }, { name, user: { id: "u1" }, v: "2026-01", ts: 1_700_000_000_000 }]);
    expect(many).toHaveLength(2);
    expect(await storedWithName(name)).toBe(3);
    const event = (await (await request(`/v1/events/${many[1]}`)).json()) as { data: Record<string, unknown> };
    expect(event.data).toMatchObject({ id: many[1], name, data: {}, user: { id: "u1" }, v: "2026-01", ts: 1_700_000_000_000 });
    expect(single).toMatch(/^[0-9A-Z]{26}$/);
  });

  it("gives an event id seen in the last 24 h back and starts nothing again; an older id is new", async () => {
    const id = uniqueKey("dedup");
    const key = uniqueKey("fanout");
    expect(await sendEvents({ id, name: "test/fanout", data: { key } })).toEqual([id]);
    const first = await finishedRuns(id, 2);
    const receivedAt = await receivedAtOf(id);
    expect(await sendEvents([{ id, name: "test/fanout", data: { key } }])).toEqual([id]);
    // Only an event whose row is new (or replaced) is enqueued: the row is untouched.
    expect(await receivedAtOf(id)).toBe(receivedAt);
    expect(await runsOf(id)).toHaveLength(2);

    await env.DB.prepare("UPDATE events SET received_at = received_at - ?1 WHERE id = ?2").bind(25 * 3600_000, id).run();
    expect(await sendEvents({ id, name: "test/fanout", data: { key } })).toEqual([id]);
    const runs = await finishedRuns(id, 4);
    expect(runs.size).toBe(2);
    expect([...runs.values()].map((r) => r.run_id)).not.toEqual([...first.values()].map((r) => r.run_id));
  });

  it("stores one event of several that share an id in one request", async () => {
    const id = uniqueKey("twice");
    expect(await sendEvents([{ id, name: "test/fanout", data: { key: "first" } }, { id, name: "test/fanout", data: { key: "second" } }])).toEqual([id, id]);
    const runs = await finishedRuns(id, 2);
    expect(runs.get("fanout-a")?.output).toBe("a:first");
  });

  it("stores a request of large events that spans several statements", async () => {
    const name = uniqueKey("test/large");
    const ids = await sendEvents(Array.from({ length: 5 }, (_, i) => ({ name, data: { i, blob: "z".repeat(400 * 1024) } })));
    expect(ids).toHaveLength(5);
    expect(await storedWithName(name)).toBe(5);
    const event = (await (await request(`/v1/events/${ids[4]}`)).json()) as { data: { data: { i: number; blob: string } } };
    expect(event.data.data.i).toBe(4);
    expect(event.data.data.blob).toHaveLength(400 * 1024);
  });

  it("delays the runs of an event whose ts is in the future", async () => {
    const key = uniqueKey("delayed");
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key }, ts: Date.now() + 1500 });
    const queued = await finishedRunsQueued(eventId!);
    expect(queued.every((r) => r.status === "Queued")).toBe(true);
    const runs = await finishedRuns(eventId!, 2);
    for (const run of runs.values()) {
      expect(run.status).toBe("Completed");
      expect(Date.parse(run.ended_at!)).toBeGreaterThanOrEqual(Date.parse(run.run_started_at) + 1000);
    }
  });

  it("accepts JSON sent the way `curl -d` sends it, as form-urlencoded", async () => {
    const name = uniqueKey("test/curl");
    const response = await post(JSON.stringify({ name }), "application/x-www-form-urlencoded");
    expect(response.status).toBe(200);
    expect(await storedWithName(name)).toBe(1);
  });

  it("derives ids from the inngest SDK's event id seed, so its retried send is a duplicate", async () => {
    const key = uniqueKey("seeded");
    const seed = `${Date.now()},${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(10))))}`;
    const send = () =>
      request("/e/key", {
        method: "POST",
        headers: { "content-type": "application/json", "x-inngest-event-id-seed": seed },
        body: JSON.stringify([{ name: "test/fanout", data: { key } }]),
      }).then(async (r) => ((await r.json()) as { ids: string[] }).ids);
    const first = await send();
    await finishedRuns(first[0]!, 2);
    expect(await send()).toEqual(first);
    expect(await runsOf(first[0]!)).toHaveLength(2);
  });

  it("accepts events sent by app.send() inside the Worker", async () => {
    const key = uniqueKey("send");
    const { ids } = await app.send({ name: "test/fanout", data: { key } });
    const runs = await finishedRuns(ids[0]!, 2);
    expect(runs.get("fanout-a")?.output).toBe(`a:${key}`);
  });

  const badRequests: [string, () => Promise<Response>, number, RegExp][] = [
    ["invalid JSON", () => post("{ nope"), 400, /not valid JSON/],
    ["a missing name", () => post(JSON.stringify({ data: {} })), 400, /name/],
    ["a name of the wrong type", () => post(JSON.stringify({ name: 42 })), 400, /name/],
    ["an empty name", () => post(JSON.stringify({ name: "" })), 400, /name/],
    ["a name over 255 characters", () => post(JSON.stringify({ name: "x".repeat(256) })), 400, /255/],
    ["data that is an array", () => post(JSON.stringify({ name: "test/bad", data: [1] })), 400, /data/],
    ["data that is a string", () => post(JSON.stringify({ name: "test/bad", data: "x" })), 400, /data/],
    ["ts that is not a number", () => post(JSON.stringify({ name: "test/bad", ts: "soon" })), 400, /ts/],
    ["a bad event inside an array", () => post(JSON.stringify([{ name: "test/ok" }, { name: 1 }])), 400, /1\.name/],
    ["an empty array", () => post("[]"), 400, /no events/],
    ["a JSON value that is not an event", () => post("12"), 400, /invalid event/],
    ["invalid UTF-8", () => post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, /UTF-8/],
    ["an XML content type", () => post("<event/>", "application/xml"), 415, /content-type/],
    ["a multipart content type", () => post("--x--", "multipart/form-data; boundary=x"), 415, /content-type/],
    ["an event over 512 KiB", () => post(JSON.stringify({ name: "test/bad", data: { blob: "x".repeat(600 * 1024) } })), 413, /512 KiB/],
    ["a body over 3 MiB", () => post(JSON.stringify([{ name: "test/bad", data: { blob: "x".repeat(3200 * 1024) } }])), 413, /3 MiB/],
    ["more than 5,000 events", () => post(JSON.stringify(Array.from({ length: 5001 }, () => ({ name: "test/bad" })))), 413, /5000/],
  ];

  it.each(badRequests)("refuses %s with a JSON error and stores nothing", async (_what, send, status, message) => {
    const before = await storedWithName("test/bad");
    const response = await send();
    expect(response.status).toBe(status);
    const body = (await response.json()) as { error: string };
    expect(body.error).toMatch(message);
    expect(await storedWithName("test/bad")).toBe(before);
  });
});

async function finishedRunsQueued(eventId: string) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const runs = await runsOf(eventId);
    if (runs.length === 2) return runs;
    if (Date.now() > deadline) throw new Error("runs were not created");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
