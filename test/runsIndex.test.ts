// The runs index under workerd, now that a run's object writes its own row: once it is worth one
// (it runs a while, waits, queues) or with its end, so a short run's row is one write. A run is
// found by id before the index has it; an unknown id leaves no object behind; a bulk cancellation
// made while a run was not listed yet still meets it.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eventually, finishedRuns, getRun, request, runIdOf, runsOf, sendEvents, uniqueKey } from "./helpers.ts";
import { endRunStatement } from "../worker/db/runs.ts";
import { runIdFor } from "../worker/platform/runId.ts";

async function indexRow(runId: string): Promise<{ status: string; ended_at: number | null } | null> {
  return env.DB.prepare("SELECT status, ended_at FROM runs WHERE id = ?1").bind(runId).first<{ status: string; ended_at: number | null }>();
}

async function holding(key: string): Promise<void> {
  await eventually(async () => ((await env.DB.prepare("SELECT 1 FROM test_effects WHERE key = ?1").bind(`${key}:holding`).first()) ? true : undefined));
}

async function release(key: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(`${key}:release`).run();
}

describe("the runs index, written by each run's object", () => {
  it("lists a run that runs a while as Running, then writes its end over it", async () => {
    const key = uniqueKey("held");
    const [eventId] = await sendEvents({ name: "test/held-step", data: { key } });
    await holding(key);
    const runId = await runIdOf(eventId!);
    // Listed within about a second of running, while it still holds.
    expect(await eventually(async () => (await indexRow(runId)) ?? undefined)).toMatchObject({ status: "Running", ended_at: null });
    await release(key);
    await eventually(async () => ((await indexRow(runId))?.status === "Completed" ? true : undefined));
    expect((await getRun(runId)).output).toBe("released");
  });

  it("answers a run by id before the index has its row", async () => {
    const key = uniqueKey("unlisted");
    const [eventId] = await sendEvents({ name: "test/held-step", data: { key } });
    await holding(key);
    const runId = await runIdOf(eventId!);
    // As if its row had not been written yet.
    await env.DB.prepare("DELETE FROM runs WHERE id = ?1").bind(runId).run();
    expect((await getRun(runId)).status).toBe("Running");
    await release(key);
    await eventually(async () => ((await indexRow(runId))?.status === "Completed" ? true : undefined));
  });

  it("answers 404 for an unknown run id and leaves no object behind", async () => {
    const runId = "0123456789abcdef0123456789abcd01";
    expect((await request(`/v1/runs/${runId}`)).status).toBe(404);
    expect((await request(`/v1/runs/${runId}/stream`)).status).toBe(404);
    const tables = await runInDurableObject(env.RUNS.get(env.RUNS.idFromName(runId)), (_, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray());
    expect(tables).toEqual([]);
  });

  it("cancels a run by a bulk cancellation made while the run was not listed yet", async () => {
    const key = uniqueKey("bulk-late");
    const [eventId] = await sendEvents({ name: "test/held-step", data: { key } });
    await holding(key);
    // Made at once: the run is most likely within its first second, not in the index, so no page finds it.
    const created = await request("/v1/cancellations", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ function_id: "held-step", if: `event.data.key == "${key}"` }) });
    expect(created.status).toBe(201);
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).status === "Cancelled" ? true : undefined));
    await release(key);
  });
});

// D1 bills every entry a write makes, in the table and in each index it enters.
describe("what a run's and an event's rows cost in D1", () => {
  it("writes three entries for an event: no index of undispatched events", async () => {
    const id = uniqueKey("entries");
    const written = await env.DB.prepare("INSERT INTO events (id, name, data, ts, received_at, dispatched_at) VALUES (?1, 'test/none', '{}', 1, 1, 1)").bind(id).run();
    expect(written.meta.rows_written).toBe(3);
  });

  it("writes one entry for a run started at its event's receipt, two for another run of that event, and lists both under it", async () => {
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key: uniqueKey("entries") } });
    const runs = await finishedRuns(eventId!, 2);
    const first = runs.get("fanout-a")!;
    await eventually(async () => ((await indexRow(first.run_id))?.status === "Completed" ? true : undefined));
    const receivedAt = (await env.DB.prepare("SELECT received_at FROM events WHERE id = ?1").bind(eventId).first<{ received_at: number }>())!.received_at;
    const atReceipt = { runId: runIdFor("fanout-a", `${eventId}-again`, receivedAt), functionId: "fanout-a", eventId: `${eventId}-again`, status: "Completed" as const, startedAt: receivedAt, endedAt: receivedAt };
    expect((await endRunStatement(env.DB, atReceipt).run()).meta.rows_written).toBe(1);
    // A re-run: its own id and its own start, found through the index by event id.
    const rerun = await request(`/v1/runs/${first.run_id}/rerun`, { method: "POST" });
    const { data } = (await rerun.json()) as { data: { run_id: string } };
    await eventually(async () => ((await indexRow(data.run_id))?.status === "Completed" ? true : undefined));
    const other = { ...atReceipt, runId: runIdFor("fanout-a", "rerun:x", receivedAt + 1), startedAt: receivedAt + 1 };
    expect((await endRunStatement(env.DB, other).run()).meta.rows_written).toBe(2);
    expect((await runsOf(eventId!)).map((run) => run.run_id).sort()).toEqual([first.run_id, runs.get("fanout-b")!.run_id, data.run_id].sort());
  });
});

