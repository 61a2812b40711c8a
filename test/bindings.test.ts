import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { instrument } from "../worker/platform/bindings.ts";
import type { Env } from "../worker/platform/env.ts";
import type { QueueMessage } from "../worker/queue/messages.ts";
import { usage, type Usage } from "../worker/platform/usage.ts";
import { uniqueKey } from "./helpers.ts";

/** What `work` added to the counters. */
async function counted(work: () => Promise<unknown>): Promise<Partial<Usage>> {
  const before = { ...usage };
  await work();
  const delta: Partial<Usage> = {};
  for (const key of Object.keys(usage) as (keyof Usage)[]) if (usage[key] !== before[key]) delta[key] = usage[key] - before[key];
  return delta;
}

describe("instrument(env)", () => {
  it("is idempotent: the same env gives the same wrapper, and a wrapper comes back as it is", () => {
    const metered = instrument(env);
    expect(instrument(env)).toBe(metered);
    expect(instrument(metered)).toBe(metered);
    expect(metered.STEPFLARE_DEV).toBe(env.STEPFLARE_DEV);
  });

  it("counts D1 statements and rows written, through every way of running a statement", async () => {
    const db = instrument(env).DB;
    const key = uniqueKey("bindings");
    const insert = db.prepare("INSERT INTO test_effects (key) VALUES (?1)");
    expect(await counted(() => insert.bind(key).run())).toEqual({ d1Statements: 1, d1RowsWritten: 1 });
    expect(await counted(() => db.batch([insert.bind(key), insert.bind(key), db.prepare("SELECT 1")]))).toEqual({ d1Statements: 3, d1RowsWritten: 2 });
    const count = db.prepare("SELECT COUNT(*) AS n FROM test_effects WHERE key = ?1").bind(key);
    expect(await counted(async () => expect((await count.all<{ n: number }>()).results).toEqual([{ n: 3 }]))).toEqual({ d1Statements: 1 });
    expect(await counted(async () => expect(await count.first<number>("n")).toBe(3))).toEqual({ d1Statements: 1 });
    expect(await count.first()).toEqual({ n: 3 });
    await expect(count.first("missing")).rejects.toThrow(/D1_COLUMN_NOTFOUND/);
    expect(await counted(async () => expect(await count.raw({ columnNames: true })).toEqual([["n"], [3]]))).toEqual({ d1Statements: 1 });
    expect(await counted(() => db.exec("SELECT 1;\nSELECT 2;"))).toEqual({ d1Statements: 2 });
    const session = db.withSession("first-primary");
    expect(await counted(() => session.batch([session.prepare("DELETE FROM test_effects WHERE key = ?1").bind(key)]))).toEqual({ d1Statements: 1, d1RowsWritten: 3 });
  });

  it("counts queue messages once they are sent", async () => {
    const metered = instrument(env as Env);
    // Refs to events the log does not hold: the consumer logs them and acks, starting nothing.
    const ref = (id: string): QueueMessage => ({ type: "event-ref", id: uniqueKey(id), receivedAt: 0 });
    expect((await counted(() => metered.EVENTS.send(ref("a")))).queueMessages).toBe(1);
    expect((await counted(() => metered.EVENTS.sendBatch([ref("b"), ref("c")].map((body) => ({ body }))))).queueMessages).toBe(2);
  });

  it("counts one Durable Object request per method call on a stub", async () => {
    const runs = instrument(env).RUNS;
    const name = uniqueKey("no-run");
    const stub = runs.get(runs.idFromName(name));
    // Runs of other tests finish meanwhile (their alarms count too): at least these calls are counted.
    expect((await counted(async () => expect(await stub.summary()).toBeNull())).doRequests).toBeGreaterThanOrEqual(1);
    expect((await counted(async () => [await stub.getRun(), await stub.status()])).doRequests).toBeGreaterThanOrEqual(2);
    // Properties that are not methods pass through, uncounted.
    expect(await counted(async () => expect(stub.id.toString()).toBe(runs.idFromName(name).toString()))).toEqual({});
  });

  it("counts nothing twice when a copy of an instrumented env is instrumented again", async () => {
    const copy = instrument({ ...instrument(env), STEPFLARE_DEV: undefined });
    // 50 statements: counted twice they would be 100; other tests' runs may add a few of their own meanwhile.
    const { d1Statements = 0 } = await counted(async () => {
      for (let i = 0; i < 50; i++) await copy.DB.prepare("SELECT 1").all();
    });
    expect(d1Statements).toBeGreaterThanOrEqual(50);
    expect(d1Statements).toBeLessThan(100);
  });
});
