import { env } from "cloudflare:workers";
import { monotonicFactory } from "ulidx";
import { describe, expect, it } from "vitest";
import { pruneExpired, PRUNE_LIMIT } from "../worker/schedule/tick.ts";
import { eventually, finishedRuns, request, runIdOf, runStub, sendEvents, uniqueKey } from "./helpers.ts";
import type { RunWithSteps } from "../worker/runs/RunObject.ts";
import { ageIndexRow, alarmOf, DAY, endInIndex, indexRowOf, pruneUntilGone, tablesOf } from "./indexRows.ts";

async function count(sql: string, key: string): Promise<number> {
  const row = await env.DB.prepare(sql).bind(key).first<{ n: number }>();
  return row?.n ?? 0;
}

/**
 * Stores `n` dispatched events named `prefix` received at `at`: half with ids the engine makes (ULIDs of
 * their receipt, ordered by their ids), half with ids a sender chose (in index events_received).
 */
async function storeEvents(prefix: string, n: number, at: number): Promise<void> {
  const next = monotonicFactory();
  const ids = Array.from({ length: n }, (_, i) => (i % 2 ? [`${prefix}-event-${i}`, null] : [next(at), 1]));
  await env.DB.prepare(
    `INSERT INTO events (id, name, data, ts, received_at, dispatched_at, id_ordered)
     SELECT value ->> 0, ?1, '{}', ?2, ?2, ?2, value ->> 1 FROM json_each(?3)`,
  )
    .bind(prefix, at, JSON.stringify(ids))
    .run();
}

/**
 * Indexes `n` runs of event `prefix` started at `startedAt` that ended at `endedAt` (null: unfinished). Those
 * that ended are skipped runs: rows with no object behind them, as these have (a finished run's id would go
 * to its object through the queue, and hundreds of objects asked would hold the tests' queue for seconds).
 */
async function indexRuns(prefix: string, n: number, startedAt: number, endedAt: number | null): Promise<void> {
  await env.DB.prepare(
    `INSERT INTO runs (id, function_id, event_id, status, started_at, ended_at)
     SELECT ?1 || '-run-' || value, 'retention', ?1, ?2, ?3, ?4 FROM json_each(?5)`,
  )
    .bind(prefix, endedAt === null ? "Running" : "Skipped", startedAt, endedAt, JSON.stringify(Array.from({ length: n }, (_, i) => i)))
    .run();
}

describe("retention", () => {
  it("deletes events and finished runs' index rows past 30 days, in bounded batches, and keeps the rest", async () => {
    // Rows 20 days old, pruned as if 20 days from now: old to this prune, young to the tick's own
    // prunes at the real time, which may run meanwhile. Other tests' rows are days younger than the cutoff.
    const realNow = Date.now();
    const now = realNow + 20 * DAY;
    const [old, recent, unfinished] = [uniqueKey("retention-old"), uniqueKey("retention-recent"), uniqueKey("retention-unfinished")];
    const extra = 100;
    // Ordered rows 20 days old: as in a deployment that migrated before them (lowering it is always safe).
    await env.DB.prepare("UPDATE sweep_cursor SET ordered_since = MIN(ordered_since, ?1)").bind(realNow - 30 * DAY).run();
    await storeEvents(old, PRUNE_LIMIT + extra, realNow - 20 * DAY);
    await indexRuns(old, PRUNE_LIMIT + extra, realNow - 21 * DAY, realNow - 20 * DAY);
    await storeEvents(recent, 3, realNow - 5 * DAY);
    await indexRuns(recent, 3, realNow - 6 * DAY, realNow - 5 * DAY);
    await indexRuns(unfinished, 3, realNow - 25 * DAY, null);

    // A pass's dispatch marks go with the events they name.
    const mark = env.DB.prepare("INSERT INTO dispatch_marks (second, pass, refs, at) VALUES (?1, ?2, '[]', ?3)");
    await env.DB.batch([mark.bind(Math.floor((realNow - 20 * DAY) / 1000), old, realNow - 20 * DAY), mark.bind(Math.floor((realNow - 5 * DAY) / 1000), recent, realNow - 5 * DAY)]);
    const marks = (prefix: string) => count("SELECT COUNT(*) AS n FROM dispatch_marks WHERE pass = ?1", prefix);
    const events = (prefix: string) => count("SELECT COUNT(*) AS n FROM events WHERE name = ?1", prefix);
    const runs = (prefix: string) => count("SELECT COUNT(*) AS n FROM runs WHERE event_id = ?1", prefix);

    expect(await pruneExpired(env, now)).toMatchObject({ events: PRUNE_LIMIT, runs: PRUNE_LIMIT });
    expect([await events(old), await runs(old)]).toEqual([extra, extra]);
    // A mark outlives none of the events it names: those left keep theirs.
    expect(await marks(old)).toBe(1);
    expect(await pruneExpired(env, now)).toMatchObject({ events: extra, runs: extra });
    expect(await pruneExpired(env, now)).toMatchObject({ events: 0, runs: 0 });

    expect([await events(old), await runs(old)]).toEqual([0, 0]);
    expect([await events(recent), await runs(recent)]).toEqual([3, 3]);
    expect([await marks(old), await marks(recent)]).toEqual([0, 1]);
    expect(await runs(unfinished)).toBe(3);
  });
});

describe("a run's retention", () => {
  it("deletes a finished run's object once the tick prunes its index row, and keeps an unfinished run's object and row", async () => {
    const key = uniqueKey("run-retention");
    const [finishedEvent, sleepingEvent] = await sendEvents([
      { name: "test/fanout", data: { key } },
      { name: "test/cancellable", data: { key } },
    ]);
    const finished = (await finishedRuns(finishedEvent!, 2)).get("fanout-a")!;
    const sleepingId = await runIdOf(sleepingEvent!);
    await endInIndex(finished.run_id);
    expect(await indexRowOf(sleepingId)).toMatchObject({ ended_at: null });
    // Both rows 20 days old, pruned as if 20 days from now: past retention, where other tests' rows are not.
    await Promise.all([ageIndexRow(finished.run_id, 20 * DAY), ageIndexRow(sleepingId, 20 * DAY)]);
    const now = Date.now() + 20 * DAY;

    await pruneUntilGone(finished.run_id, now);
    // The queue took its id: its object deletes its records, tables and all.
    await eventually(async () => ((await runStub(finished.run_id).getRun()) === null ? true : undefined), 15_000, "the finished run's object deleted");
    expect(await tablesOf(finished.run_id)).toEqual([]);
    expect(await alarmOf(finished.run_id)).toBeNull();
    // Asked again (a message delivered twice), it finds nothing to delete.
    expect(await runStub(finished.run_id).expire()).toBe("absent");

    // The sleeping run, unfinished, keeps its row and its object, even when asked to expire.
    expect(await indexRowOf(sleepingId)).toMatchObject({ ended_at: null });
    expect(await runStub(sleepingId).expire()).toBe("unfinished");
    expect(((await runStub(sleepingId).getRun()) as unknown as RunWithSteps).run.status).toBe("Running");

    await ageIndexRow(sleepingId, -20 * DAY);
    expect((await request(`/v1/runs/${sleepingId}`, { method: "DELETE" })).status).toBe(200);
  });
});
