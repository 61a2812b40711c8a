// The engine over three D1 shards (DB, DB_1, DB_2: the workers-shards project binds them): events,
// runs index rows and waits each on its key's shard, listings merged across shards, rows written
// under an earlier layout still found, and the tick's sweep and repair working on every shard.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { dispatchedAtSql, getEvents } from "../worker/db/events.ts";
import { forgetLayouts, shardIndex, shardsOf } from "../worker/db/shards.ts";
import { runIdFor } from "../worker/platform/runId.ts";
import type { Env } from "../worker/platform/env.ts";
import { tick } from "../worker/schedule/tick.ts";
import { eventually, request, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";
import { checkGeneratedLogs } from "./eventLog.model.ts";

const workerEnv = env as unknown as Env;
const shards = () => shardsOf(workerEnv);

/** The shards (by index) whose `table` has a row with this id. */
async function shardsWith(table: "events" | "runs", id: string): Promise<number[]> {
  const found = await Promise.all(shards().map((shard) => shard.prepare(`SELECT 1 AS ok FROM ${table} WHERE id = ?1`).bind(id).first()));
  return found.flatMap((row, index) => (row ? [index] : []));
}

async function finished(runId: string): Promise<RunJson> {
  return eventually(async () => {
    const response = await request(`/v1/runs/${runId}`);
    if (response.status !== 200) return undefined;
    const run = ((await response.json()) as { data: RunJson }).data;
    return run.status === "Completed" ? run : undefined;
  }, 20_000, `run ${runId} completed`);
}

async function receivedAt(eventId: string): Promise<number> {
  const response = await request(`/v1/events/${eventId}`);
  expect(response.status).toBe(200);
  return Date.parse(((await response.json()) as { data: { received_at: string } }).data.received_at);
}

beforeAll(() => {
  expect(shards()).toHaveLength(3);
});

describe("shards", () => {
  it("stores each event on its id's shard and each run's index row on its run id's shard, over every shard", async () => {
    const key = uniqueKey("spread");
    const ids = await sendEvents(Array.from({ length: 30 }, (_, i) => ({ name: "test/fanout", data: { key: `${key}-${i}` } })));
    const used = new Set<number>();
    for (const id of ids) {
      expect(await shardsWith("events", id)).toEqual([shardIndex(id, 3)]);
      used.add(shardIndex(id, 3));
      const runId = runIdFor("fanout-a", id, await receivedAt(id));
      expect((await finished(runId)).output).toBe(`a:${key}-${ids.indexOf(id)}`);
      await eventually(async () => ((await shardsWith("runs", runId)).length > 0 ? true : undefined), 10_000, `the index row of ${runId}`);
      expect(await shardsWith("runs", runId)).toEqual([shardIndex(runId, 3)]);
    }
    expect(used.size).toBe(3);
    // The event's page lists its runs from whichever shards hold them.
    const response = await request(`/v1/events/${ids[0]}/runs`);
    expect(((await response.json()) as { data: RunJson[] }).data.map((run) => run.function_id).sort()).toEqual(["fanout-a", "fanout-b"]);
  });

  it("pages through runs and events of every shard newest first, each once", async () => {
    const key = uniqueKey("pages");
    const ids = await sendEvents(Array.from({ length: 20 }, (_, i) => ({ name: "test/fanout", data: { key: `${key}-${i}` } })));
    const expected = new Set<string>();
    for (const id of ids) for (const fn of ["fanout-a", "fanout-b"]) expected.add(runIdFor(fn, id, await receivedAt(id)));
    for (const runId of expected) await finished(runId);
    await eventually(async () => (await Promise.all([...expected].map((id) => shardsWith("runs", id)))).every((found) => found.length === 1) || undefined, 10_000, "every run indexed");

    // Rows of other runs (the file's earlier tests') may still land while the pages are read: every row there
    // before the first page is listed, and nothing that is not there after the last.
    const indexedIds = async () => new Set((await Promise.all(shards().map(async (shard) => (await shard.prepare("SELECT id FROM runs").all<{ id: string }>()).results))).flat().map((row) => row.id));
    const before = await indexedIds();
    const listed: { run_id: string; run_started_at: string }[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/v1/runs?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = (await (await request(query)).json()) as { data: { run_id: string; run_started_at: string }[]; next_cursor: string | null };
      listed.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    const listedIds = listed.map((run) => run.run_id);
    expect(new Set(listedIds).size).toBe(listedIds.length);
    for (const runId of expected) expect(listedIds).toContain(runId);
    const keys = listed.map((run) => [Date.parse(run.run_started_at), run.run_id] as const);
    for (let i = 1; i < keys.length; i++) {
      const [at, id] = keys[i]!;
      const [prevAt, prevId] = keys[i - 1]!;
      expect(prevAt > at || (prevAt === at && prevId > id), `${prevId} before ${id}`).toBe(true);
    }
    const after = await indexedIds();
    for (const id of before) expect(listedIds).toContain(id);
    for (const id of listedIds) expect(after.has(id), `${id} listed, not in the index`).toBe(true);

    const events: string[] = [];
    cursor = null;
    do {
      const query: string = `/v1/events?name=test/fanout&limit=9${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = (await (await request(query)).json()) as { data: { id: string }[]; next_cursor: string | null };
      events.push(...page.data.map((event) => event.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(new Set(events).size).toBe(events.length);
    for (const id of ids) expect(events).toContain(id);
  });

  it("resolves a wait, stored on its event name's shard, with an event stored on another", async () => {
    const userId = uniqueKey("user");
    const [signup] = await sendEvents({ name: "test/signup", data: { userId } });
    const runId = runIdFor("waits-match", signup!, await receivedAt(signup!));
    const waitShard = shardIndex("test/activated", 3);
    await eventually(async () => ((await shards()[waitShard]!.prepare("SELECT 1 AS ok FROM waits WHERE run_id = ?1").bind(runId).first()) ? true : undefined), 15_000, "the wait's row");
    // Sent until one lands on a shard other than the wait's (each id's shard is its own).
    let activation: string | undefined;
    for (let i = 0; i < 10 && activation === undefined; i++) {
      const [id] = await sendEvents({ name: "test/activated", data: { userId, attempt: i } });
      if (shardIndex(id!, 3) !== waitShard) activation = id;
    }
    expect(activation).toBeDefined();
    expect((await finished(runId)).output).toMatchObject({ activated: { userId } });
    expect(await shards()[waitShard]!.prepare("SELECT COUNT(*) AS n FROM waits WHERE run_id = ?1").bind(runId).first<{ n: number }>()).toEqual({ n: 0 });
  });

  it("finds, dispatches and marks an event written where an earlier layout put it, and sweeps it from that shard", async () => {
    // The deployment ran with two shards before this one: its record, as that Worker wrote it.
    await workerEnv.DB.prepare("INSERT INTO shard_layouts (count, first_seen) VALUES (2, ?1) ON CONFLICT DO NOTHING").bind(Date.now() - 3_600_000).run();
    forgetLayouts();
    let id = "";
    for (let i = 0; shardIndex(id, 2) === shardIndex(id, 3); i++) id = uniqueKey(`old-layout-${i}`);
    const oldShard = shards()[shardIndex(id, 2)]!;
    const key = uniqueKey("old");
    const at = Date.now() - 60_000;
    // Lost from the queue: stored, never dispatched, older than the sweep's 30 s.
    await oldShard
      .prepare("INSERT INTO events (id, name, data, ts, received_at) VALUES (?1, 'test/fanout', ?2, ?3, ?3)")
      .bind(id, JSON.stringify({ key }), at)
      .run();
    await oldShard.prepare("UPDATE sweep_cursor SET swept_to = MIN(swept_to, ?1)").bind(at - 1).run();
    expect((await request(`/v1/events/${id}`)).status).toBe(200);

    await tick(workerEnv);
    const run = await finished(runIdFor("fanout-a", id, at));
    expect(run.output).toBe(`a:${key}`);
    await eventually(async () => ((await oldShard.prepare(`SELECT ${dispatchedAtSql()} AS dispatched_at FROM events WHERE id = ?1`).bind(id).first<{ dispatched_at: number | null }>())?.dispatched_at ? true : undefined), 15_000, "the dispatched mark on the old layout's shard");
    // Sent again within the dedup window, the id is known: no second event on the current layout's shard.
    await sendEvents({ id, name: "test/fanout", data: { key } });
    expect(await shardsWith("events", id)).toEqual([shardIndex(id, 2)]);

    // A Worker a deploy had not replaced yet still writes under two shards after three were first seen: its event is found by ref.
    let late = "";
    for (let i = 0; shardIndex(late, 2) === shardIndex(late, 3); i++) late = uniqueKey(`late-${i}`);
    const now = Date.now();
    await shards()[shardIndex(late, 2)]!.prepare("INSERT INTO events (id, name, data, ts, received_at) VALUES (?1, 'test/nothing', '{}', ?2, ?2)").bind(late, now).run();
    expect((await getEvents(workerEnv, [{ id: late, receivedAt: now }])).map((found) => found.event.id)).toEqual([late]);
  });

  it("repairs an index row on its own shard: the tick asks the run's object and records its end there", async () => {
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key: uniqueKey("repair") } });
    const runId = runIdFor("fanout-a", eventId!, await receivedAt(eventId!));
    await finished(runId);
    const shard = shards()[shardIndex(runId, 3)]!;
    await eventually(async () => ((await shardsWith("runs", runId)).length > 0 ? true : undefined), 10_000, "the index row");
    // The index lost the end (an older Worker's crash, say): the row says Running, long ago.
    await shard.prepare("UPDATE runs SET status = 'Running', ended_at = NULL, started_at = ?2, checked_at = 0, id_ordered = NULL WHERE id = ?1").bind(runId, Date.now() - 120_000).run();
    await eventually(
      async () => {
        await tick(workerEnv);
        const row = await shard.prepare("SELECT status FROM runs WHERE id = ?1").bind(runId).first<{ status: string }>();
        return row?.status === "Completed" ? true : undefined;
      },
      20_000,
      "the repaired row",
    );
  });

  it("starts, on resume, every event a paused function held, whichever shard it is on", async () => {
    const post = (path: string) => request(path, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect((await post("/v1/functions/fanout-a/pause")).status).toBe(200);
    const key = uniqueKey("held");
    const ids = await sendEvents(Array.from({ length: 12 }, (_, i) => ({ name: "test/fanout", data: { key: `${key}-${i}` } })));
    expect(new Set(ids.map((id) => shardIndex(id, 3))).size).toBe(3);
    // Held: each event is recorded for the paused function (fanout-b, not paused, runs at once).
    await eventually(async () => ((await workerEnv.DB.prepare("SELECT COUNT(*) AS n FROM paused_events WHERE function_id = 'fanout-a'").first<{ n: number }>())!.n === 12 ? true : undefined), 15_000, "12 held events");
    expect((await post("/v1/functions/fanout-a/resume")).status).toBe(200);
    for (const [i, id] of ids.entries()) expect((await finished(runIdFor("fanout-a", id, await receivedAt(id)))).output).toBe(`a:${key}-${i}`);
    expect(await workerEnv.DB.prepare("SELECT COUNT(*) AS n FROM paused_events WHERE function_id = 'fanout-a'").first<{ n: number }>()).toEqual({ n: 0 });
  });

  it("cancels in bulk the runs of every shard", async () => {
    const key = uniqueKey("bulk");
    const ids = await sendEvents(Array.from({ length: 12 }, (_, i) => ({ name: "test/cancellable", data: { key: `${key}-${i}` } })));
    const runIds = await Promise.all(ids.map(async (id) => runIdFor("cancellable", id, await receivedAt(id))));
    expect(new Set(runIds.map((runId) => shardIndex(runId, 3))).size).toBe(3);
    // Each sleeping run lists itself (its index row), so a page of the cancellation finds it.
    await eventually(async () => (await Promise.all(runIds.map((runId) => shardsWith("runs", runId)))).every((found) => found.length === 1) || undefined, 15_000, "every run listed");
    const response = await request("/v1/cancellations", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ function_id: "cancellable", started_after: new Date(Date.now() - 600_000).toISOString() }) });
    expect(response.status).toBe(201);
    for (const runId of runIds) {
      await eventually(async () => {
        const run = ((await (await request(`/v1/runs/${runId}`)).json()) as { data: RunJson }).data;
        return run.status === "Cancelled" ? true : undefined;
      }, 20_000, `run ${runId} cancelled`);
    }
  });
});

describe("the event log's reads by receipt over three shards, generated (test/eventLog.model.ts)", () => {
  it("lists every shard's events merged, sweeps each shard's, and prunes them, as their ids and marks say", async () => {
    await checkGeneratedLogs(env as Env);
  });
});
