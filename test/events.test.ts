import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker, { app } from "./worker.ts";
import { runIdFor } from "../worker/platform/runId.ts";
import { tick } from "../worker/schedule/tick.ts";
import { ulid } from "ulidx";
import { DEDUP_WINDOW_MS, deleteOldEventsStatement, dispatchedAtSql, getEvent, idOrdered, insertEvents, listEvents, markDispatched, sweepUndispatchedEvents, undispatchedEvents } from "../worker/db/events.ts";
import { dispatchInline, INLINE_MAX_EVENTS, INLINE_MAX_IN_FLIGHT, inlineDispatchesInFlight } from "../worker/dispatch/inline.ts";
import { ingestEvents, parseEvents } from "../worker/ingest/ingest.ts";
import type { Env } from "../worker/platform/env.ts";
import { eventually, finishedRuns, request, runsOf, sendEvents, uniqueKey } from "./helpers.ts";
import { checkGeneratedLogs } from "./eventLog.model.ts";

async function receivedAtOf(id: string): Promise<number | undefined> {
  const row = await env.DB.prepare("SELECT received_at FROM events WHERE id = ?1").bind(id).first<{ received_at: number }>();
  return row?.received_at;
}

interface EventRowJson {
  data: unknown;
  received_at: number;
  dispatched_at: number | null;
  swept_at: number | null;
}

/** Every stored event with this id, oldest first. */
async function eventRows(id: string): Promise<EventRowJson[]> {
  const { results } = await env.DB.prepare("SELECT data, received_at, dispatched_at, swept_at FROM events WHERE id = ?1 ORDER BY received_at")
    .bind(id)
    .all<EventRowJson & { data: string }>();
  return results.map((row) => ({ ...row, data: JSON.parse(row.data) as unknown }));
}

async function storedWithName(name: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE name = ?1").bind(name).first<{ n: number }>();
  return row?.n ?? 0;
}

/** The test env with its event log and queue wrapped to record every call made on them. */
function recordingEnv(): { recorded: Env; calls: string[] } {
  const calls: string[] = [];
  const record = <T extends object>(binding: T, name: string): T =>
    new Proxy(binding, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(`${name}.${String(property)}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return { recorded: { ...(env as Env), DB: record(env.DB, "DB"), EVENTS: record(env.EVENTS, "EVENTS") }, calls };
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

  it("gives an event id seen in the last 24 h back and starts nothing again", async () => {
    const id = uniqueKey("dedup");
    const key = uniqueKey("fanout");
    expect(await sendEvents({ id, name: "test/fanout", data: { key } })).toEqual([id]);
    await finishedRuns(id, 2);
    const receivedAt = await receivedAtOf(id);
    expect(await sendEvents([{ id, name: "test/fanout", data: { key: "again" } }])).toEqual([id]);
    // Only a new event is stored and enqueued: the row is untouched.
    expect(await eventRows(id)).toEqual([expect.objectContaining({ received_at: receivedAt, data: { key } })]);
    expect(await runsOf(id)).toHaveLength(2);
  });

  it("keeps an event whose id is sent again after 24 h beside the new one, each with its own runs", async () => {
    const id = uniqueKey("resent");
    const [first, second] = [uniqueKey("first"), uniqueKey("second")];
    expect(await sendEvents({ id, name: "test/fanout", data: { key: first } })).toEqual([id]);
    await finishedRuns(id, 2);
    const firstReceivedAt = (await receivedAtOf(id))!;
    // Their rows are in the runs index (each run writes its own, with its end).
    await eventually(async () => ((await env.DB.prepare("SELECT COUNT(*) AS n FROM runs WHERE event_id = ?1").bind(id).first<{ n: number }>())?.n === 2 ? true : undefined));
    // As if the first had been received 25 h ago, its runs started then (they keep the ids of its real receipt).
    await env.DB.batch([
      env.DB.prepare("UPDATE events SET received_at = received_at - ?1 WHERE id = ?2").bind(25 * 3600_000, id),
      env.DB.prepare("UPDATE runs SET started_at = started_at - ?1, id_ordered = NULL WHERE event_id = ?2").bind(25 * 3600_000, id),
    ]);
    expect(await sendEvents({ id, name: "test/fanout", data: { key: second } })).toEqual([id]);

    const rows = await eventRows(id);
    expect(rows.map((row) => row.data)).toEqual([{ key: first }, { key: second }]);
    const secondReceivedAt = rows[1]!.received_at;
    const runs = await eventually(async () => {
      const list = await runsOf(id);
      return list.length === 4 && list.every((run) => run.status === "Completed") ? list : undefined;
    });
    const outputs = new Map(runs.map((run) => [run.run_id, run.output]));
    expect(outputs).toEqual(
      new Map([
        [runIdFor("fanout-a", id, firstReceivedAt), `a:${first}`],
        [runIdFor("fanout-b", id, firstReceivedAt), `b:${first}`],
        [runIdFor("fanout-a", id, secondReceivedAt), `a:${second}`],
        [runIdFor("fanout-b", id, secondReceivedAt), `b:${second}`],
      ]),
    );
    await eventually(async () => ((await eventRows(id)).every((row) => row.dispatched_at !== null) ? true : undefined));

    // The event API shows the newest event with the id.
    const shown = (await (await request(`/v1/events/${id}`)).json()) as { data: Record<string, unknown> };
    expect(shown.data).toMatchObject({ id, data: { key: second }, received_at: new Date(secondReceivedAt).toISOString() });
    // Within 24 h of the second, the id is a duplicate again.
    expect(await sendEvents({ id, name: "test/fanout", data: { key: "third" } })).toEqual([id]);
    expect(await eventRows(id)).toHaveLength(2);
  });

  it("re-dispatches the undispatched one of two events sharing an id, and marks only it", async () => {
    const id = uniqueKey("lost-resent");
    const [old, lost] = [uniqueKey("old"), uniqueKey("lost")];
    const now = Date.now();
    const insert = env.DB.prepare("INSERT INTO events (id, name, data, ts, received_at, dispatched_at) VALUES (?1, 'test/fanout', ?2, ?3, ?3, ?4)");
    // The older one was dispatched long ago; the newer one was lost from the queue a minute ago.
    await env.DB.batch([
      insert.bind(id, JSON.stringify({ key: old }), now - 26 * 3600_000, now - 26 * 3600_000),
      insert.bind(id, JSON.stringify({ key: lost }), now - 60_000, null),
    ]);
    expect((await tick(env, now)).redispatched).toBeGreaterThanOrEqual(1);
    const runs = await finishedRuns(id, 2);
    expect(runs.get("fanout-a")).toMatchObject({ run_id: runIdFor("fanout-a", id, now - 60_000), output: `a:${lost}` });
    const rows = await eventually(async () => {
      const found = await eventRows(id);
      return found[1]?.dispatched_at ? found : undefined;
    });
    expect(rows[0]).toMatchObject({ data: { key: old }, dispatched_at: now - 26 * 3600_000, swept_at: null });
    expect(rows[1]).toMatchObject({ data: { key: lost }, swept_at: now });
  });

  it("sweeps from its cursor: an event read once is not read again, and a backlog past the limit leaves the cursor at the oldest left", async () => {
    // A stretch of time no other event of this file was received in.
    const t0 = 1_000_000;
    // Rows of both kinds: ids the engine made (ULIDs of their receipt, read by id) and a sender's (index events_received).
    const insert = env.DB.prepare("INSERT INTO events (id, name, data, ts, received_at, id_ordered) VALUES (?1, 'test/none', '{}', ?2, ?2, ?3)");
    const [before, c] = ["before", "c"].map((name) => uniqueKey(`cursor-${name}`));
    const [b, d] = [ulid(t0 + 1), ulid(t0 + 3)];
    await env.DB.batch([
      env.DB.prepare("UPDATE sweep_cursor SET swept_to = ?1").bind(t0),
      // Ordered rows this old exist only here: reads by id prefix start early enough for them (lowering it is always safe).
      env.DB.prepare("UPDATE sweep_cursor SET ordered_since = MIN(ordered_since, ?1)").bind(t0 - 1000),
      insert.bind(before, t0 - 1000, null),
      insert.bind(b, t0 + 1, 1),
      insert.bind(c, t0 + 2, null),
      insert.bind(d, t0 + 3, 1),
    ]);
    const cursor = async () => (await env.DB.prepare("SELECT swept_to FROM sweep_cursor").first<{ swept_to: number }>())!.swept_to;
    const sweep = () => sweepUndispatchedEvents(env.DB, { before: t0 + 10, sweptBefore: 0, now: t0 + 20, limit: 2, cursorTo: t0 + 5 });

    expect((await sweep()).map((ref) => ref.id)).toEqual([b, c]);
    expect(await cursor()).toBe(t0 + 3);
    expect((await sweep()).map((ref) => ref.id)).toEqual([d]);
    // Up to its bound, which trails the sweep (events received since are read again at the next tick).
    expect(await cursor()).toBe(t0 + 5);
    expect(await sweep()).toEqual([]);
    // The one received before the cursor is read past: the cursor never passes an event neither dispatched nor swept.
    expect((await env.DB.prepare("SELECT swept_at FROM events WHERE id = ?1").bind(before).first<{ swept_at: number | null }>())?.swept_at).toBeNull();
  });

  it("queues a large request's events several to a message, and dispatches and marks each of them", async () => {
    const key = uniqueKey("packed");
    const ids = await sendEvents(Array.from({ length: 130 }, (_, i) => ({ name: "test/fanout", data: { key: `${key}-${i}` } })));
    // Past a consumer batch's dispatch chunk (100 events): every event's two runs, and every event marked.
    for (const [i, id] of ids.entries()) expect((await finishedRuns(id, 2)).get("fanout-a")!.output).toBe(`a:${key}-${i}`);
    await eventually(
      async () => ((await env.DB.prepare(`SELECT COUNT(*) AS n FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND ${dispatchedAtSql()} IS NOT NULL`).bind(JSON.stringify(ids)).first<{ n: number }>())!.n === ids.length ? true : undefined),
      15_000,
      "every event marked dispatched",
    );
    // Marked a pass at a time (one row per second of receipt), not one update per event.
    const own = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND dispatched_at IS NOT NULL").bind(JSON.stringify(ids)).first("n");
    expect(own).toBe(0);
  }, 60_000);

  it("marks a pass over several events in one row, which the sweep, a duplicate's check and the API read", async () => {
    const now = Date.now();
    const events = Array.from({ length: 25 }, (_, i) => ({ id: uniqueKey(`pass-${i}`), name: "test/none", data: {}, ts: now }));
    await insertEvents(env as Env, events, now - 40_000);
    const refs = events.map((event) => ({ id: event.id, receivedAt: now - 40_000 }));
    // One the sweep already took (re-enqueued, say) is marked on its own row too: it leaves the resweep's index.
    await env.DB.prepare("UPDATE events SET swept_at = ?1 WHERE id = ?2").bind(now - 5_000, events[0]!.id).run();
    // D1's count of rows written: the marks' row, and the one swept row's mark.
    const results: D1Result[] = [];
    const db = new Proxy(env.DB, {
      get(target, property) {
        if (property === "batch") return async (statements: D1PreparedStatement[]) => results.push(...(await target.batch(statements))) && results;
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const counted = { ...(env as Env), DB: db };
    await (await markDispatched(counted, refs, now)).write(counted);
    expect(results.reduce((sum, result) => sum + result.meta.rows_written, 0)).toBe(2);

    const marks = await env.DB.prepare("SELECT second, refs, at FROM dispatch_marks WHERE second = ?1").bind(Math.floor((now - 40_000) / 1000)).all<{ refs: string; at: number }>();
    const named = marks.results.filter((row) => row.refs.includes(events[1]!.id));
    expect(named).toHaveLength(1);
    expect(JSON.parse(named[0]!.refs)).toEqual(refs.map((ref) => [ref.id, ref.receivedAt]));
    expect((await eventRows(events[0]!.id))[0]).toMatchObject({ dispatched_at: now });
    expect((await eventRows(events[1]!.id))[0]).toMatchObject({ dispatched_at: null, swept_at: null });

    expect((await getEvent(env as Env, events[1]!.id))?.dispatchedAt).toBe(now);
    expect(await undispatchedEvents(env as Env, events.map((event) => event.id), now - DEDUP_WINDOW_MS)).toEqual([]);
    // The sweep passes them by: its window holds them, and none is taken.
    await env.DB.prepare("UPDATE sweep_cursor SET swept_to = ?1").bind(now - 41_000).run();
    const swept = await sweepUndispatchedEvents(env.DB, { before: now - 30_000, sweptBefore: 0, now, limit: 1000, cursorTo: now - 39_000 });
    expect(swept.filter((ref) => events.some((event) => event.id === ref.id))).toEqual([]);
    const dispatched = await env.DB.prepare(`SELECT COUNT(*) AS n FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND ${dispatchedAtSql()} = ?2`).bind(JSON.stringify(events.map((event) => event.id)), now).first("n");
    expect(dispatched).toBe(events.length);
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
    const ts = Date.now() + 1500;
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key }, ts });
    const queued = await finishedRunsQueued(eventId!);
    expect(queued.every((r) => r.status === "Queued")).toBe(true);
    const runs = await finishedRuns(eventId!, 2);
    for (const run of runs.values()) {
      expect(run.status).toBe("Completed");
      // Not before its event's ts (however long dispatch took under load).
      expect(Date.parse(run.ended_at!)).toBeGreaterThanOrEqual(ts);
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

  it("refuses an event named inngest/… from a sender, naming it, and stores none of the request", async () => {
    const name = uniqueKey("test/beside-reserved");
    const response = await post(JSON.stringify([{ name }, { name: "inngest/function.failed", data: { run_id: "forged" } }]));
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: 'event 1: the name "inngest/function.failed" is reserved: names starting with "inngest/" are sent only by Stepflare',
      path: "1.name",
    });
    expect(await storedWithName(name)).toBe(0);
    const one = await post(JSON.stringify({ name: "inngest/anything" }));
    expect(((await one.json()) as { error: string }).error).toMatch(/^event 0: the name "inngest\/anything" is reserved/);
  });

  it("refuses an event named inngest/… from app.send() inside the Worker", async () => {
    await expect(app.send({ name: "inngest/function.finished", data: {} })).rejects.toThrow(/event 0: the name "inngest\/function.finished" is reserved/);
  });

  it("answers no ids for an empty array, and stores and enqueues nothing", async () => {
    const { recorded, calls } = recordingEnv();
    const req = new Request("http://stepflare.test/e/some-key", { method: "POST", headers: { "content-type": "application/json" }, body: "[]" });
    const response = await worker.fetch!(req as Request<unknown, IncomingRequestCfProperties>, recorded, createExecutionContext());
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ids: [], status: 200 });
    expect(await ingestEvents(recorded, parseEvents([]))).toEqual({ ids: [] });
    expect(calls).toEqual([]);
    expect(await app.send([])).toEqual({ ids: [] });
    // The recorder sees what one event costs.
    await ingestEvents(recorded, parseEvents([{ name: uniqueKey("test/recorded") }]));
    expect(calls).toEqual(expect.arrayContaining(["DB.batch", "EVENTS.sendBatch"]));
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

describe("dispatch from the request that accepted the events", () => {
  it("takes a request of up to INLINE_MAX_EVENTS events while fewer than INLINE_MAX_IN_FLIGHT dispatches run, and leaves the rest to the queue", async () => {
    const background: Promise<unknown>[] = [];
    const waitUntil = (work: Promise<unknown>) => void background.push(work);
    const accepted = (n: number) => Array.from({ length: n }, () => ({ event: { id: uniqueKey("inline"), name: "test/none", data: {}, ts: Date.now() }, receivedAt: Date.now() }));
    // The requests of the tests before have dispatched theirs.
    await eventually(async () => (inlineDispatchesInFlight() === 0 ? true : undefined));
    expect(dispatchInline(env, accepted(INLINE_MAX_EVENTS + 1), waitUntil)).toBe(false);
    const taken = Array.from({ length: INLINE_MAX_IN_FLIGHT }, () => dispatchInline(env, accepted(1), waitUntil));
    expect(taken.every(Boolean)).toBe(true);
    // Every slot is taken until those dispatches end.
    expect(dispatchInline(env, accepted(1), waitUntil)).toBe(false);
    await Promise.all(background);
    expect(dispatchInline(env, accepted(INLINE_MAX_EVENTS), waitUntil)).toBe(true);
    await Promise.all(background);
  });
});


describe("the event log ordered by the engine's ids", () => {
  const write = (id: string, at: number, ordered: 1 | null) =>
    env.DB.prepare("INSERT INTO events (id, name, data, ts, received_at, id_ordered) VALUES (?1, 'test/none', '{}', ?2, ?2, ?3)").bind(id, at, ordered).run();

  it("marks an event whose id the engine made at its receipt, and no other; such a row is written without an entry by receipt", async () => {
    const receivedAt = Date.now();
    const own = { id: ulid(receivedAt), name: "test/none", data: {}, ts: receivedAt };
    const senders = { id: uniqueKey("sender-id"), name: "test/none", data: {}, ts: receivedAt };
    // A ULID of another millisecond: an id derived from the inngest SDK's seed, made on the sender's clock.
    const seeded = { id: ulid(receivedAt - 5), name: "test/none", data: {}, ts: receivedAt };
    expect(await insertEvents(env as Env, [own, senders, seeded], receivedAt)).toHaveLength(3);
    const { results } = await env.DB.prepare("SELECT id, id_ordered FROM events WHERE id IN (?1, ?2, ?3)").bind(own.id, senders.id, seeded.id).all<{ id: string; id_ordered: number | null }>();
    expect(new Map(results.map((row) => [row.id, row.id_ordered]))).toEqual(new Map([[own.id, 1], [senders.id, null], [seeded.id, null]]));
    expect([idOrdered(own.id, receivedAt), idOrdered(own.id.toLowerCase(), receivedAt), idOrdered(own.id, receivedAt + 1)]).toEqual([1, null, null]);

    // Events sent without an id get ids of their receipt's millisecond, however long their request takes to read.
    const sent = await sendEvents(Array.from({ length: 100 }, (_, i) => ({ name: "test/none", data: { i, pad: "x".repeat(2000) } })));
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND id_ordered = 1").bind(JSON.stringify(sent)).first("n")).toBe(100);

    // D1 counts each index entry as a row written: the row and its entry in events_name, against three.
    const at = Date.now();
    expect((await write(ulid(at), at, 1)).meta.rows_written).toBe(2);
    expect((await write(uniqueKey("sender-id"), at, null)).meta.rows_written).toBe(3);
  });

  it("lists both kinds newest first by (receipt, id), each once, a few to a page", async () => {
    // An hour ahead, after every other test's events: listed from a cursor just past them.
    const t = Date.now() + 3_600_000;
    const stored: { id: string; at: number }[] = [];
    try {
      for (let ms = 0; ms < 5; ms++) {
        const events = [ulid(t + ms), uniqueKey("listed"), ulid(t + ms)].map((id) => ({ id, name: "test/none", data: {}, ts: t }));
        await insertEvents(env as Env, events, t + ms);
        stored.push(...events.map((event) => ({ id: event.id, at: t + ms })));
      }
      const expected = [...stored].sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1)).map((row) => row.id);
      const listed: string[] = [];
      let cursor: { at: number; id: string } | null = { at: t + 10, id: "" };
      while (cursor && listed.length < expected.length) {
        const page: Awaited<ReturnType<typeof listEvents>> = await listEvents(env as Env, {}, cursor, 4);
        listed.push(...page.rows.map((row) => row.id));
        cursor = page.next;
      }
      expect(listed.slice(0, expected.length)).toEqual(expected);
    } finally {
      await env.DB.prepare("DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(stored.map((row) => row.id))).run();
    }
  });
});

// Here, in this file, because it moves the sweep's cursor as the sweep test above does: one file at a time.
describe("the event log's reads by receipt, over generated logs (test/eventLog.model.ts)", () => {
  it("lists, sweeps and prunes each log's events as its ids and marks say", async () => {
    await checkGeneratedLogs(env as Env);
  });
});
