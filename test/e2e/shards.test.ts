/**
 * Scale-out under `wrangler dev`: the event log, the runs index and the waits spread over three D1
 * shards (test/e2e/shards/three.toml: DB, DB_1, DB_2), then a restart on the same `--persist-to`
 * directory with a fourth (four.toml: DB_3). Every row must sit on the shard its key names under the
 * layout it was written in (worker/db/shards.ts), the listings must merge the shards into one
 * newest-first order, and after the restart everything written before stays readable, new rows use
 * all four shards, and a run that waited across the restart (its wait on a shard the new layout does
 * not name) is resumed by its reply. What each shard holds is read through the test Worker's own
 * bindings (`GET /test/shards` in test/e2e/shards/index.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shardIndex } from "../../worker/db/shards.ts";
import type { ShardContents } from "./shards/index.ts";
import { stepflareApi } from "./stepflareApi.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

/**
 * Events sent before the restart (spread over three shards) and after it (over four). `npm test` runs
 * a short version; `npm run test:scale-out` the full one (STEPFLARE_SCALE_EVENTS=3000). The
 * ids are fixed, so each shard's share is the same every run.
 */
const FIRST_EVENTS = Number(process.env.STEPFLARE_SCALE_EVENTS ?? 600);
const LATER_EVENTS = Math.max(200, Math.round(FIRST_EVENTS / 7.5));
const PER_REQUEST = 500;
const SETTLE_MS = 240_000;
const WAIT_KEY = "across-the-restart";

interface RunRow {
  run_id: string;
  function_id: string;
  event_id: string;
  status: string;
  run_started_at: string;
}
interface EventRow {
  id: string;
  name: string;
  data: { n?: number };
  received_at: string;
}

let persistDir = "";
let dev: DevServer | undefined;

const pingId = (i: number) => `ping-${String(i).padStart(4, "0")}`;
const laterId = (i: number) => `later-${String(i).padStart(3, "0")}`;

function api() {
  return stepflareApi(dev!, { runTimeoutMs: SETTLE_MS }).api;
}

/** Sends `ids` as `shards/ping` events, `PER_REQUEST` a request (more than 10: through the queue). */
async function sendPings(ids: string[]): Promise<void> {
  for (let start = 0; start < ids.length; start += PER_REQUEST) {
    const events = ids.slice(start, start + PER_REQUEST).map((id) => ({ id, name: "shards/ping", data: { n: Number(id.split("-")[1]) } }));
    const { status, body } = await api()<{ ids: string[] }>("POST", "/e/dev", events);
    expect(status).toBe(200);
    expect(body.ids).toEqual(events.map((event) => event.id));
  }
}

/** Every page of a newest-first listing (`next_cursor` followed to the end). */
async function allPages<T>(route: string, limit: number): Promise<{ rows: T[]; pages: number }> {
  const rows: T[] = [];
  let pages = 0;
  for (let cursor: string | null = null; ; ) {
    const query: URLSearchParams = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    const { status, body }: { status: number; body: { data: T[]; next_cursor: string | null } } = await api()("GET", `${route}${route.includes("?") ? "&" : "?"}${query}`);
    expect(status).toBe(200);
    rows.push(...body.data);
    pages++;
    if (!body.next_cursor) return { rows, pages };
    cursor = body.next_cursor;
  }
}

/** Waits until the runs index counts `count` runs of `shards-ping` Completed (GET /v1/functions' stats, one request a poll). */
async function pingsCompleted(count: number): Promise<void> {
  await waitFor(`${count} completed runs of shards-ping`, SETTLE_MS, dev!, async () => {
    const { body } = await api()<{ data: { id: string; stats: { by_status: Record<string, number> } }[] }>("GET", "/v1/functions");
    const byStatus = body.data.find((fn) => fn.id === "shards-ping")?.stats.by_status ?? {};
    if (byStatus.Failed) throw Object.assign(new Error(`${byStatus.Failed} runs of shards-ping failed\n${dev!.log().slice(-4000)}`), { fatal: true });
    return byStatus.Completed === count ? true : undefined;
  });
}

/** The runs listing, a page of 200 at a time: each run once, in (started_at desc, id desc) order. */
async function listRunsOnce(): Promise<RunRow[]> {
  const { rows, pages } = await allPages<RunRow>("/v1/runs", 200);
  expect(pages).toBeGreaterThan(1);
  expect(new Set(rows.map((row) => row.run_id)).size).toBe(rows.length);
  for (let i = 1; i < rows.length; i++) {
    const [before, row] = [rows[i - 1]!, rows[i]!];
    const [at, atBefore] = [Date.parse(row.run_started_at), Date.parse(before.run_started_at)];
    expect(at < atBefore || (at === atBefore && row.run_id < before.run_id), `${row.run_id} after ${before.run_id}`).toBe(true);
  }
  return rows;
}

async function shards(): Promise<ShardContents[]> {
  return (await api()<ShardContents[]>("GET", "/test/shards")).body;
}

/** Checks that every key of `keysOf(shard)` among `keys` is on the shard `count` shards put it on, and answers how many each holds. */
function placed(contents: ShardContents[], keysOf: (shard: ShardContents) => string[], keys: Set<string>, count: number): number[] {
  return contents.map((shard, index) => {
    const held = keysOf(shard).filter((key) => keys.has(key));
    expect(held.filter((key) => shardIndex(key, count) !== index), `keys on ${shard.binding} that ${count} shards put elsewhere`).toEqual([]);
    return held.length;
  });
}

beforeAll(async () => {
  persistDir = await mkdtemp(path.join(os.tmpdir(), "stepflare-shards-"));
});

afterAll(async () => {
  await dev?.stop();
  if (persistDir) await rm(persistDir, { recursive: true, force: true });
});

describe("D1 shards under wrangler dev", () => {
  it("spreads events, runs and waits over three shards, lists them as one, and keeps them all readable once a fourth is added", async () => {
    dev = await startDevServer(["test/e2e/shards/three.toml"], "/v1/functions", { persistDir });
    const firstIds = Array.from({ length: FIRST_EVENTS }, (_, i) => pingId(i));
    await sendPings(firstIds);
    await pingsCompleted(FIRST_EVENTS);

    // Each event on the shard of its id, each within 20% of an even share.
    const before = await shards();
    expect(before.map((shard) => shard.binding)).toEqual(["DB", "DB_1", "DB_2"]);
    const eventCounts = placed(before, (shard) => shard.events, new Set(firstIds), 3);
    expect(eventCounts.reduce((a, b) => a + b)).toBe(FIRST_EVENTS);
    for (const count of eventCounts) expect(Math.abs(count - FIRST_EVENTS / 3)).toBeLessThanOrEqual(FIRST_EVENTS / 3 / 5);

    // One run per event, listed once across the shards, each index row on the shard of its run id.
    const listed = await listRunsOnce();
    expect(listed).toHaveLength(FIRST_EVENTS);
    expect(listed.every((run) => run.function_id === "shards-ping" && run.status === "Completed")).toBe(true);
    expect(new Set(listed.map((run) => run.event_id))).toEqual(new Set(firstIds));
    const runIds = new Set(listed.map((run) => run.run_id));
    expect(placed(before, (shard) => shard.runs, runIds, 3).reduce((a, b) => a + b)).toBe(FIRST_EVENTS);

    // A run that waits across the restart: its wait on the shard of `shards/reply` under three shards.
    const { body: sent } = await api()<{ ids: string[] }>("POST", "/e/dev", { name: "shards/wait", data: { key: WAIT_KEY } });
    const waitingRun = await waitFor("the waiter's wait to be stored", SETTLE_MS, dev, async () => {
      const { body } = await api()<{ data: { run_id: string; function_id: string }[] }>("GET", `/v1/events/${sent.ids[0]}/runs`);
      const runId = body.data.find((run) => run.function_id === "shards-waiter")?.run_id;
      if (!runId) return undefined;
      const stored = (await shards()).flatMap((shard, index) => shard.waits.filter((wait) => wait.run_id === runId).map((wait) => ({ ...wait, index })));
      return stored.length > 0 ? { runId, stored } : undefined;
    });
    expect(waitingRun.stored).toEqual([{ event_name: "shards/reply", run_id: waitingRun.runId, index: shardIndex("shards/reply", 3) }]);
    // The point of the check after the restart: four shards put the reply's waits elsewhere.
    expect(shardIndex("shards/reply", 4)).not.toBe(shardIndex("shards/reply", 3));
    await dev.stop();

    // The restart, with DB_3 bound (and migrated) as well.
    dev = await startDevServer(["test/e2e/shards/four.toml"], "/v1/functions", { persistDir });
    const sample = Array.from({ length: 40 }, (_, i) => (i * 997) % FIRST_EVENTS);
    expect(sample.filter((i) => shardIndex(pingId(i), 4) !== shardIndex(pingId(i), 3)).length).toBeGreaterThan(10);
    for (const i of sample) {
      const { status, body } = await api()<{ data: EventRow }>("GET", `/v1/events/${pingId(i)}`);
      expect(status, pingId(i)).toBe(200);
      expect(body.data).toMatchObject({ id: pingId(i), name: "shards/ping", data: { n: i } });
    }
    const events = await allPages<EventRow>("/v1/events?name=shards%2Fping", 500);
    expect(events.rows.map((event) => event.id).sort()).toEqual([...firstIds].sort());
    for (const run of listed.filter((_, i) => i % 75 === 0)) {
      const { status, body } = await api()<{ data: { run_id: string; status: string; output: unknown } }>("GET", `/v1/runs/${run.run_id}`);
      expect(status, run.run_id).toBe(200);
      expect(body.data).toMatchObject({ run_id: run.run_id, status: "Completed", output: { n: Number(run.event_id.split("-")[1]) } });
    }

    // New events and runs spread over all four shards; the earlier ones stay where they were.
    const laterIds = Array.from({ length: LATER_EVENTS }, (_, i) => laterId(i));
    await sendPings(laterIds);
    await pingsCompleted(FIRST_EVENTS + LATER_EVENTS);
    const after = await shards();
    expect(after.map((shard) => shard.binding)).toEqual(["DB", "DB_1", "DB_2", "DB_3"]);
    expect(placed(after, (shard) => shard.events, new Set(firstIds), 3)).toEqual([...eventCounts, 0]);
    const laterCounts = placed(after, (shard) => shard.events, new Set(laterIds), 4);
    expect(laterCounts.reduce((a, b) => a + b)).toBe(LATER_EVENTS);
    for (const count of laterCounts) expect(Math.abs(count - LATER_EVENTS / 4)).toBeLessThanOrEqual(LATER_EVENTS / 4 / 5);

    // The reply resumes the run whose wait the three-shard layout stored.
    const { status: replied } = await api()("POST", "/e/dev", { name: "shards/reply", data: { key: WAIT_KEY, v: "hello" } });
    expect(replied).toBe(200);
    const resumed = await stepflareApi(dev, { runTimeoutMs: SETTLE_MS }).finished(sent.ids[0]!, "shards-waiter");
    expect(resumed).toMatchObject({ run_id: waitingRun.runId, status: "Completed", output: { replied: "hello" } });
    expect((await shards()).flatMap((shard) => shard.waits)).toEqual([]);

    // Every run listed once more, over four shards: the later ones, and the waiter's ended where its row was.
    const relisted = await listRunsOnce();
    expect(relisted).toHaveLength(FIRST_EVENTS + LATER_EVENTS + 1);
    expect(relisted.find((run) => run.run_id === waitingRun.runId)?.status).toBe("Completed");
    const laterRunIds = new Set(relisted.filter((run) => run.event_id.startsWith("later-")).map((run) => run.run_id));
    expect(laterRunIds.size).toBe(LATER_EVENTS);
    expect(placed(after, (shard) => shard.runs, laterRunIds, 4).reduce((a, b) => a + b)).toBe(LATER_EVENTS);
    expect(placed(after, (shard) => shard.runs, new Set([waitingRun.runId]), 3).reduce((a, b) => a + b)).toBe(1);
  }, FIRST_EVENTS > 1_000 ? 900_000 : 300_000);
});
