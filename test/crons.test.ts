// Cron triggers (issue 11): the crons table kept in step with the functions, due schedules started
// once per scheduled time whatever the ticks do, and the wrangler.toml trigger firing directly.
import { createExecutionContext, createScheduledController, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { Stepflare } from "../sdk/index.ts";
import { cronRunId, runDueCrons } from "../worker/schedule/crons.ts";
import type { CronRow } from "../worker/db/crons.ts";
import type { Env } from "../worker/platform/env.ts";
import { setFaults } from "../worker/platform/faults.ts";
import { type Scheduler, TICK_RETRY_MS } from "../worker/schedule/Scheduler.ts";
import { tick, TICK_MS } from "../worker/schedule/tick.ts";
import { allFunctions } from "../worker/platform/registry.ts";
import worker from "./worker.ts";
import { eventually, finishedRuns, getRun, request, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";

const WEEKLY = "TZ=Europe/Paris 0 9 * * 1";
const at = (iso: string) => Date.parse(iso);

async function cronRow(functionId: string, cron: string): Promise<CronRow | null> {
  return env.DB.prepare("SELECT * FROM crons WHERE function_id = ?1 AND cron = ?2").bind(functionId, cron).first<CronRow>();
}

/** Makes a registered cron due at `dueAt` (a tick of the past), as if no tick had run since. */
async function dueSince(functionId: string, cron: string, dueAt: number): Promise<void> {
  await runDueCrons(env as Env, Date.now());
  await env.DB.prepare("UPDATE crons SET next_at = ?3 WHERE function_id = ?1 AND cron = ?2").bind(functionId, cron, dueAt).run();
}

async function indexedRuns(runId: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM runs WHERE id = ?1").bind(runId).first<{ n: number }>())?.n ?? 0;
}

async function completed(runId: string): Promise<RunJson> {
  return eventually(async () => {
    const response = await request(`/v1/runs/${runId}`);
    if (!response.ok) return undefined;
    const run = ((await response.json()) as { data: RunJson }).data;
    return run.status === "Completed" ? run : undefined;
  });
}

describe("the crons table", () => {
  it("holds every registered cron with its next time, and follows functions added, changed and removed", async () => {
    const now = Date.now();
    await runDueCrons(env as Env, now);
    const weekly = await cronRow("weekly-report", WEEKLY);
    expect(weekly).toMatchObject({ timezone: "Europe/Paris" });
    expect(weekly!.next_at).toBeGreaterThan(now);
    expect(weekly!.next_at - now).toBeLessThanOrEqual(7 * 24 * 3600_000);

    // A deploy where "weekly-report" moved to 10:00 and a new function appeared: the old cron goes.
    const app = new Stepflare({ id: "sync" });
    const changed = app.createFunction({ id: "weekly-report" }, { cron: "TZ=Europe/Paris 0 10 * * 1" }, async () => null);
    const added = app.createFunction({ id: "cron-sync-added" }, { cron: "@daily" }, async () => null);
    const others = allFunctions().filter((fn) => fn.id !== "weekly-report");
    await runDueCrons(env as Env, now, [...others, changed, added]);
    expect(await cronRow("weekly-report", WEEKLY)).toBeNull();
    expect(await cronRow("weekly-report", "TZ=Europe/Paris 0 10 * * 1")).not.toBeNull();
    expect(await cronRow("cron-sync-added", "@daily")).toMatchObject({ timezone: "UTC" });

    // And back: the registered functions are what the tick keeps.
    await runDueCrons(env as Env, now);
    expect(await cronRow("weekly-report", "TZ=Europe/Paris 0 10 * * 1")).toBeNull();
    expect(await cronRow("cron-sync-added", "@daily")).toBeNull();
    expect(await cronRow("weekly-report", WEEKLY)).not.toBeNull();
  });
});

describe("due schedules", () => {
  it("starts a due schedule once however many ticks repeat or overlap, with Inngest's scheduled event", async () => {
    // Monday 30 March 2026, 09:00 in Paris (07:00 UTC, the first Monday after the clocks moved).
    const scheduledAt = at("2026-03-30T07:00:00Z");
    const now = scheduledAt + 30_000;
    await dueSince("weekly-report", WEEKLY, scheduledAt);
    const passes = await Promise.all([runDueCrons(env as Env, now), runDueCrons(env as Env, now)]);
    await runDueCrons(env as Env, now);
    const runId = cronRunId("weekly-report", WEEKLY, scheduledAt);
    expect(passes.flatMap((pass) => pass.started.map((run) => run.runId))).toContain(runId);
    // The next one is a week later, at 09:00 Paris time. Read at once: the Scheduler's own tick, on the real
    // clock, finds this past schedule due again and moves it on at its next minute.
    expect((await cronRow("weekly-report", WEEKLY))?.next_at).toBe(at("2026-04-06T07:00:00Z"));
    const run = await completed(runId);
    // One row in the runs index, which the run's object writes with its end.
    await eventually(async () => ((await indexedRuns(runId)) === 1 ? true : undefined), 15_000, "the run's row");
    expect(run.output).toEqual({ for: "schedule", cron: WEEKLY, ts: scheduledAt });
    expect(run).toMatchObject({ function_id: "weekly-report", scheduled_at: "2026-03-30T07:00:00.000Z" });
  });

  it("starts a schedule missed for weeks once, for its latest time", async () => {
    const latest = at("2026-10-26T08:00:00Z"); // Monday 26 October 2026, 09:00 in Paris after the autumn change
    await dueSince("weekly-report", WEEKLY, at("2026-09-07T07:00:00Z"));
    const { started } = await runDueCrons(env as Env, latest + 3 * 24 * 3600_000);
    const mine = started.filter((run) => run.functionId === "weekly-report");
    expect(mine.map((run) => run.runId)).toEqual([cronRunId("weekly-report", WEEKLY, latest)]);
    expect((await completed(mine[0]!.runId)).output).toMatchObject({ ts: latest });
  });

  it("runs a function with both a cron and an event trigger from its event too", async () => {
    const [eventId] = await sendEvents({ name: "test/report.requested", data: {} });
    expect((await finishedRuns(eventId!)).get("weekly-report")).toMatchObject({ status: "Completed", output: { for: "request", cron: null } });
  });
});

describe("the wrangler.toml cron trigger", () => {
  it("fires the functions whose cron is the trigger's, through scheduled()", async () => {
    const scheduledTime = at("2026-11-01T12:34:00Z");
    const controller = createScheduledController({ scheduledTime, cron: "* * * * *" });
    const ctx = createExecutionContext();
    await worker.scheduled!(controller, env as Env, ctx);
    await waitOnExecutionContext(ctx);
    const run = await completed(cronRunId("every-minute", "* * * * *", scheduledTime));
    expect(run.output).toEqual({ cron: "* * * * *", ts: scheduledTime });
  });

  it("starts one run per scheduled minute however often scheduled() is called in it, for the minute's own time", async () => {
    // `wrangler dev --test-scheduled` passes the time of the call, and a platform retry calls again.
    const minute = at("2026-11-01T13:05:00Z");
    const calls = [minute + 17_123, minute + 41_900, minute + 59_999];
    for (const scheduledTime of calls) {
      const ctx = createExecutionContext();
      await worker.scheduled!(createScheduledController({ scheduledTime, cron: "* * * * *" }), env as Env, ctx);
      await waitOnExecutionContext(ctx);
    }
    const run = await completed(cronRunId("every-minute", "* * * * *", minute));
    expect(run.output).toEqual({ cron: "* * * * *", ts: minute });
    const candidates = [minute, ...calls].map((time) => cronRunId("every-minute", "* * * * *", time));
    // One row, listed at the minute its id carries: however many calls fired it, they name the same row.
    const indexed = await env.DB.prepare("SELECT id, started_at FROM runs WHERE id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(candidates)).all<{ id: string; started_at: number }>();
    expect(indexed.results).toEqual([{ id: candidates[0], started_at: minute }]);
  });
});

describe("the REST API", () => {
  it("lists each cron with its next run, and runs a cron function now on request", async () => {
    const functions = ((await (await request("/v1/functions")).json()) as { data: { id: string; crons: { cron: string; next_run_at: string }[] }[] }).data;
    const weekly = functions.find((fn) => fn.id === "weekly-report")!;
    expect(weekly.crons).toEqual([{ cron: WEEKLY, timezone: "Europe/Paris", next_run_at: expect.stringMatching(/T0[78]:00:00\.000Z$/) }]);

    const response = await request("/v1/functions/weekly-report/trigger", { method: "POST" });
    expect(response.status).toBe(200);
    const { data } = (await response.json()) as { data: { run_id: string } };
    expect((await completed(data.run_id)).output).toMatchObject({ for: "schedule", cron: WEEKLY });
    expect((await getRun(data.run_id)).function_id).toBe("weekly-report");

    expect((await request("/v1/functions/counted/trigger", { method: "POST" })).status).toBe(400);
    expect((await request("/v1/functions/no-such-function/trigger", { method: "POST" })).status).toBe(404);
  });
});

describe("the Scheduler", () => {
  afterEach(() => {
    setFaults({ d1: false });
  });

  /**
   * Runs `fn` in a Scheduler of its own (not the one the Worker ticks with), then disarms it, so
   * that no alarm of this test fires later among other tests. Answers `fn`'s answer and the alarm.
   */
  async function inScheduler<T>(name: string, fn: (scheduler: Scheduler) => Promise<T>): Promise<{ result: T; alarmAt: number | null }> {
    const namespace = (env as Env).SCHEDULER;
    const stub = namespace.get(namespace.idFromName(`${name}-${crypto.randomUUID()}`));
    return runInDurableObject(stub, async (instance, state) => {
      const result = await fn(instance as unknown as Scheduler);
      const alarmAt = await state.storage.getAlarm();
      await state.storage.deleteAlarm();
      return { result, alarmAt };
    });
  }

  it("ticks at once when first armed, so a fresh deployment's crons are stored before their first time", async () => {
    const before = Date.now();
    const { alarmAt } = await inScheduler("first-arm", (scheduler) => scheduler.ensureTicking());
    expect(alarmAt).not.toBeNull();
    expect(alarmAt!).toBeLessThanOrEqual(Math.max(before, Date.now()));
  });

  it("ticks again within seconds after a failed tick, and at the next cron after a good one", async () => {
    setFaults({ d1: true });
    const failed = await inScheduler("failed-tick", async (scheduler) => {
      await scheduler.alarm();
      return Date.now();
    });
    // A minute later the due schedule would be skipped for the next one: the retry comes first.
    expect(failed.alarmAt!).toBeGreaterThan(failed.result);
    expect(failed.alarmAt!).toBeLessThanOrEqual(failed.result + TICK_RETRY_MS);
    expect(TICK_RETRY_MS).toBeLessThan(TICK_MS);

    setFaults({ d1: false });
    const good = await inScheduler("good-tick", async (scheduler) => {
      await scheduler.alarm();
      return Date.now();
    });
    // "every-minute" is due at the next minute: the alarm is there, not a whole tick later.
    const nextMinute = Math.ceil((good.result + 1) / 60_000) * 60_000;
    expect(good.alarmAt!).toBeLessThanOrEqual(Math.max(nextMinute, good.result));
    expect(good.alarmAt!).toBeGreaterThan(good.result - 1);
  });

  it("re-enqueues at its first tick the events a sweep sent and the queue lost again (a restart empties it under wrangler dev)", async () => {
    const key = uniqueKey("swept-lost");
    const id = uniqueKey("swept-lost-event");
    const now = Date.now();
    // Stored two minutes ago, never dispatched, swept a minute ago: that sweep's message was lost.
    await env.DB.prepare("INSERT INTO events (id, name, data, ts, received_at, swept_at) VALUES (?1, 'test/fanout', ?2, ?3, ?3, ?4)")
      .bind(id, JSON.stringify({ key }), now - 120_000, now - 60_000)
      .run();
    // Any tick but the first of a Scheduler leaves it to the resweep, five minutes after the sweep.
    await tick(env as Env, now);
    expect((await env.DB.prepare("SELECT swept_at FROM events WHERE id = ?1").bind(id).first<{ swept_at: number }>())?.swept_at).toBe(now - 60_000);
    await inScheduler("restarted", (scheduler) => scheduler.alarm());
    const runs = await finishedRuns(id, 2);
    expect(runs.get("fanout-b")).toMatchObject({ status: "Completed", output: `b:${key}` });
  });
});
