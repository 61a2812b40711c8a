import { env } from "cloudflare:workers";
import { monotonicFactory } from "ulidx";
import { describe, expect, it } from "vitest";
import { pruneExpired, PRUNE_LIMIT } from "../worker/schedule/tick.ts";
import { uniqueKey } from "./helpers.ts";

const DAY = 86_400_000;

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

/** Indexes `n` runs of event `prefix` started at `startedAt` that ended at `endedAt` (null: unfinished). */
async function indexRuns(prefix: string, n: number, startedAt: number, endedAt: number | null): Promise<void> {
  await env.DB.prepare(
    `INSERT INTO runs (id, function_id, event_id, status, started_at, ended_at)
     SELECT ?1 || '-run-' || value, 'retention', ?1, ?2, ?3, ?4 FROM json_each(?5)`,
  )
    .bind(prefix, endedAt === null ? "Running" : "Completed", startedAt, endedAt, JSON.stringify(Array.from({ length: n }, (_, i) => i)))
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
