// Stuck runs under workerd (issue 24, items 1 and 2): each kind made on purpose, found by the tick
// (called with a clock moved past the thresholds), counted by GET /v1/health, listed by
// GET /v1/runs?stuck=, announced once by stepflare/run.stuck, then repaired through the API and
// completed, each repair recorded on the run.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../worker/platform/env.ts";
import { tick } from "../worker/schedule/tick.ts";
import { eventually, getRun, request, runIdOf, runStub, sendEvents, uniqueKey } from "./helpers.ts";

const HOUR_MS = 3_600_000;

interface StuckRow {
  stuck_reason: string | null;
  stuck_since: number | null;
  checked_at: number | null;
}

function indexRow(runId: string): Promise<StuckRow | null> {
  return env.DB.prepare("SELECT stuck_reason, stuck_since, checked_at FROM runs WHERE id = ?1").bind(runId).first<StuckRow>();
}

/**
 * Ticks at `ahead` ms from now (two hours: past every default threshold) until the tick has checked
 * `runId` and found it stuck; `vars` set the thresholds.
 */
async function tickUntilStuck(runId: string, ahead = 2 * HOUR_MS, vars: Partial<Env> = {}): Promise<StuckRow> {
  return eventually(async () => {
    await tick({ ...(env as Env), ...vars }, Date.now() + ahead);
    const row = await indexRow(runId);
    return row?.stuck_reason ? row : undefined;
  }, 20_000, `the tick to find run ${runId} stuck`);
}

async function stuckEventCount(runId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE name = 'stepflare/run.stuck' AND json_extract(data, '$.run_id') = ?1").bind(runId).first<{ n: number }>();
  return row?.n ?? 0;
}

async function post(path: string, body?: unknown): Promise<{ status: number; body: { data?: unknown; error?: string; path?: string } }> {
  const res = await request(path, { method: "POST", headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as { data?: unknown; error?: string } };
}

async function getJson<T>(path: string): Promise<T> {
  const res = await request(path);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

type RunWithRepairs = Awaited<ReturnType<typeof getRun>> & { repairs?: { action: string; detail?: string }[]; stuck_reason?: string };

describe("stuck runs", () => {
  it("finds a run whose function is no longer registered, and re-points it to a registered one that completes it", async () => {
    const key = uniqueKey("gone");
    const runId = crypto.randomUUID().replaceAll("-", "");
    const event = { id: uniqueKey("gone-event"), name: "test/counted", data: { key, sleep: "1ms" }, ts: Date.now() };
    // A run of a function a deploy removed: it waits for it rather than failing.
    await runStub(runId).start({ runId, functionId: "removed-by-a-deploy", events: [event], startAt: Date.now() });
    await eventually(async () => ((await indexRow(runId)) ? true : undefined), 15_000, "the waiting run's row");
    expect((await getRun(runId)).status).toBe("Running");

    const row = await tickUntilStuck(runId);
    expect(row.stuck_reason).toBe("function_missing");
    // Another tick keeps the verdict and its time, and sends no second event.
    await tick(env as Env, Date.now() + 2 * HOUR_MS);
    expect(await indexRow(runId)).toMatchObject({ stuck_reason: "function_missing", stuck_since: row.stuck_since });
    expect(await stuckEventCount(runId)).toBe(1);
    const stuckEvent = await env.DB.prepare("SELECT id, data FROM events WHERE name = 'stepflare/run.stuck' AND json_extract(data, '$.run_id') = ?1").bind(runId).first<{ id: string; data: string }>();
    expect(JSON.parse(stuckEvent!.data)).toMatchObject({ run_id: runId, function_id: "removed-by-a-deploy", reason: "function_missing" });

    const health = await getJson<{ data: { stuck: Record<string, number>; links: Record<string, string> } }>("/v1/health");
    expect(health.data.stuck.function_missing).toBeGreaterThanOrEqual(1);
    const listed = await getJson<{ data: { run_id: string; stuck_reason: string }[] }>(health.data.links.function_missing!);
    expect(listed.data.find((run) => run.run_id === runId)).toMatchObject({ stuck_reason: "function_missing" });
    expect(((await getRun(runId)) as RunWithRepairs).stuck_reason).toBe("function_missing");

    // A function that does not exist is refused, with what to do.
    const refused = await post(`/v1/runs/${runId}/repoint`, { function_id: "no-such-function" });
    expect(refused.status).toBe(404);
    expect(refused.body.error).toContain("no function with id");
    expect((await post(`/v1/runs/${runId}/repoint`, {})).status).toBe(400);

    expect((await post(`/v1/runs/${runId}/repoint`, { function_id: "counted" })).status).toBe(200);
    const done = await eventually(async () => {
      const run = (await getRun(runId)) as RunWithRepairs;
      return run.status === "Completed" ? run : undefined;
    });
    expect(done).toMatchObject({ function_id: "counted", output: "abc" });
    expect(done.repairs?.map((repair) => repair.action)).toEqual(["repoint", "wake"]);
    expect(done.repairs?.[0]?.detail).toBe("removed-by-a-deploy → counted");
    // Idempotent: asked again, it changes nothing and records nothing.
    expect(await post(`/v1/runs/${runId}/repoint`, { function_id: "counted" })).toMatchObject({ status: 200, body: { data: { status: "Completed" } } });
    expect(((await getRun(runId)) as RunWithRepairs).repairs).toHaveLength(2);
    expect((await indexRow(runId))?.stuck_reason).toBeNull();
    // Nor does a repoint of the run, now ended, to another function move its row: one row, under the function it ran as.
    expect(await post(`/v1/runs/${runId}/repoint`, { function_id: "cancellable" })).toMatchObject({ status: 200, body: { data: { status: "Completed" } } });
    expect((await env.DB.prepare("SELECT function_id, status FROM runs WHERE id = ?1").bind(runId).all()).results).toEqual([{ function_id: "counted", status: "Completed" }]);
  });

  it("finds a run whose object lost its alarm, and wakes it; then cancels it in bulk", async () => {
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key: uniqueKey("no-alarm") } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((step) => step.name === "long-wait") ? true : undefined));
    await eventually(async () => ((await indexRow(runId)) ? true : undefined));
    await runInDurableObject(runStub(runId), (_object, state) => state.storage.deleteAlarm());

    expect((await tickUntilStuck(runId)).stuck_reason).toBe("no_alarm");
    expect((await post(`/v1/runs/${runId}/wake`)).body).toMatchObject({ data: { run_id: runId, status: "Running" } });
    // Woken, it goes back to its sleep, under an alarm again; the verdict is cleared until a check says otherwise.
    await eventually(async () => ((await runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm())) !== null ? true : undefined));
    expect((await indexRow(runId))?.stuck_reason).toBeNull();

    const bulk = await post("/v1/runs/repair", { action: "cancel", run_ids: [runId, "0".repeat(32)] });
    expect(bulk.status).toBe(200);
    expect(bulk.body.data).toEqual([{ run_id: runId, status: "Cancelled" }, { run_id: "0".repeat(32), error: `no run with id "${"0".repeat(32)}"` }]);
    const run = (await getRun(runId)) as RunWithRepairs;
    expect(run.status).toBe("Cancelled");
    expect(run.repairs?.map((repair) => repair.action)).toEqual(["wake", "cancel"]);
    expect((await post("/v1/runs/repair", { action: "explode", run_ids: [runId] })).status).toBe(400);
  });

  it("wakes a run that stays without its alarm past the overdue threshold, once it has reported it", async () => {
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key: uniqueKey("no-alarm-left") } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((step) => step.name === "long-wait") ? true : undefined));
    await eventually(async () => ((await indexRow(runId)) ? true : undefined));
    await runInDurableObject(runStub(runId), (_object, state) => state.storage.deleteAlarm());

    const found = await tickUntilStuck(runId);
    expect(found.stuck_reason).toBe("no_alarm");
    // Checked again more than the overdue threshold (60 s) after it was found, and no one has woken it: the tick does.
    await tick(env as Env, found.stuck_since! + 2 * 60_000);
    expect(await stuckEventCount(runId)).toBe(1);
    expect((await indexRow(runId))?.stuck_reason).toBeNull();
    await eventually(async () => ((await runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm())) !== null ? true : undefined));
    expect(((await getRun(runId)) as RunWithRepairs).repairs).toEqual([expect.objectContaining({ action: "wake", detail: "by the tick" })]);
    expect((await request(`/v1/runs/${runId}`, { method: "DELETE" })).status).toBe(200);
  });

  it("wakes a run re-pointed to the function it has, as a wake does; the dev switch answers 404 for a run that does not exist", async () => {
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key: uniqueKey("repoint-same") } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((step) => step.name === "long-wait") ? true : undefined));
    expect((await post(`/v1/dev/runs/${runId}/drop-alarm`)).status).toBe(200);
    expect(await runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm())).toBeNull();

    expect((await post(`/v1/runs/${runId}/repoint`, { function_id: "cancellable" })).status).toBe(200);
    await eventually(async () => ((await runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm())) !== null ? true : undefined));
    expect(((await getRun(runId)) as RunWithRepairs).repairs?.map((repair) => repair.action)).toEqual(["wake"]);

    const unknown = await post(`/v1/dev/runs/${"0".repeat(32)}/drop-alarm`);
    expect(unknown).toMatchObject({ status: 404, body: { error: `no run with id "${"0".repeat(32)}"` } });
    expect((await request(`/v1/runs/${runId}`, { method: "DELETE" })).status).toBe(200);
  });

  it("finds a run whose wake time passed long ago as overdue (a queued run waits its turn and is not)", async () => {
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key: uniqueKey("overdue") } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((step) => step.name === "long-wait") ? true : undefined));
    await eventually(async () => ((await indexRow(runId)) ? true : undefined));
    // Two hours on, its one-hour sleep should have ended: its alarm did not fire.
    const row = await tickUntilStuck(runId);
    expect(row.stuck_reason).toBe("overdue");
    const sleep = (await getRun(runId)).steps!.find((step) => step.name === "long-wait") as unknown as { wake_at: string };
    const wakeAt = Date.parse(sleep.wake_at);
    expect(row.stuck_since).toBe(wakeAt);
    await post(`/v1/runs/${runId}/repair`, { action: "cancel" });
    expect((await getRun(runId)).status).toBe("Cancelled");
  });

  it("finds a run whose step keeps retrying, and wakes it to retry now once the cause is fixed", async () => {
    const key = uniqueKey("retrying");
    const [eventId] = await sendEvents({ name: "test/keeps-failing", data: { key } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((step) => step.status === "Retrying") ? true : undefined));
    await eventually(async () => ((await indexRow(runId)) ? true : undefined));

    // Past its first failure by more than the threshold (1 s here), before its next retry is overdue
    // (it comes 15 s to 45 s after the failure); later than 30 s, since the tick checks no younger run.
    expect((await tickUntilStuck(runId, 31_000, { STEPFLARE_STUCK_RETRYING_SECONDS: "1" })).stuck_reason).toBe("retrying");
    await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(`${key}:fixed`).run();
    expect((await post(`/v1/runs/${runId}/repair`, { action: "wake" })).status).toBe(200);
    const done = await eventually(async () => {
      const run = (await getRun(runId)) as RunWithRepairs;
      return run.status === "Completed" ? run : undefined;
    });
    expect(done.output).toBe("fixed");
    expect(done.repairs?.map((repair) => repair.action)).toEqual(["wake"]);
  });

  it("reruns a stuck run from a step as a new run, once however often it is asked, and cancels the stuck one", async () => {
    const key = uniqueKey("rerun");
    const [eventId] = await sendEvents({ name: "test/keeps-failing", data: { key } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((step) => step.status === "Retrying") ? true : undefined));
    await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(`${key}:fixed`).run();
    const first = await post("/v1/runs/repair", { action: "rerun", run_ids: [runId] });
    const second = await post("/v1/runs/repair", { action: "rerun", run_ids: [runId] });
    const newRunId = (first.body.data as { new_run_id: string }[])[0]!.new_run_id;
    expect((second.body.data as { new_run_id: string }[])[0]!.new_run_id).toBe(newRunId);
    const old = (await getRun(runId)) as RunWithRepairs;
    expect(old.status).toBe("Cancelled");
    expect(old.repairs).toEqual([{ action: "rerun", at: expect.any(String), detail: newRunId }]);
    await eventually(async () => ((await getRun(newRunId)).status === "Completed" ? true : undefined));
  });
});
