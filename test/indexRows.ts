import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Env } from "../worker/platform/env.ts";
import { pruneExpired } from "../worker/schedule/tick.ts";
import { eventually, runStub } from "./helpers.ts";

// A run's row in the runs index and its retention, for the tests of the tick's pruning (these
// projects bind DB alone: every row is on it).

export const DAY = 86_400_000;

interface IndexRow {
  status: string;
  started_at: number;
  ended_at: number | null;
}

/** The run's row in the runs index, or null. */
export async function indexRowOf(runId: string): Promise<IndexRow | null> {
  return env.DB.prepare("SELECT status, started_at, ended_at FROM runs WHERE id = ?1").bind(runId).first<IndexRow>();
}

/** Waits until the run's end reached its row in the runs index (the object delivered it). */
export async function endInIndex(runId: string): Promise<IndexRow> {
  return eventually(async () => {
    const row = await indexRowOf(runId);
    return row?.ended_at ? row : undefined;
  }, 15_000, `the end of run ${runId} in the runs index`);
}

/**
 * Moves the run's row `ms` into the past (its start, and its end if it has one): pruned as if that much
 * later, it is past retention where other tests' rows, younger, are not.
 */
export async function ageIndexRow(runId: string, ms: number): Promise<void> {
  await env.DB.prepare("UPDATE runs SET started_at = started_at - ?2, ended_at = ended_at - ?2 WHERE id = ?1").bind(runId, ms).run();
}

/** Prunes as the tick does at `now` until the run's row is gone (other rows past retention may come first). */
export async function pruneUntilGone(runId: string, now: number, on: Env = env as unknown as Env): Promise<void> {
  for (let prunes = 0; (await indexRowOf(runId)) !== null; prunes++) {
    expect(prunes, `prunes before run ${runId}'s row went`).toBeLessThan(10);
    await pruneExpired(on, now);
  }
}

/** When the run's object's alarm is set to go off; null if it has none. */
export async function alarmOf(runId: string): Promise<number | null> {
  return runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm());
}

/** The tables the run's object's storage holds: none once its records are deleted. */
export async function tablesOf(runId: string): Promise<string[]> {
  return runInDurableObject(runStub(runId), (_object, state) => state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((row) => row.name));
}
