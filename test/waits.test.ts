// The waits index under workerd (issue 20): what a wait is matched by (lists, maps and null; fields
// past an event's first 256, at any depth), what its look back reads, which event `mode: "any"`
// returns, and an event received before a timeout that is processed after it. The functions are
// test/coordination.functions.ts's `waits-given`, whose trigger names the wait's options.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { StoredEvent } from "../sdk/event.ts";
import { eventKeyAt, eventMatchKeys } from "../sdk/wait.ts";
import { dispatchedAtSql, insertEvents } from "../worker/db/events.ts";
import { findWaitsStatement, insertWaitStatements, keyPathsStatement } from "../worker/db/waits.ts";
import { deliverMatches, findMatchingWaits, registerWaits, waitRows } from "../worker/runs/waits.ts";
import { getRun, eventually, runIdOf, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";

interface GivenOutput {
  reply: { name: string; data: Record<string, unknown> } | { name: string; data: Record<string, unknown> }[] | null;
}

/**
 * Starts a `waits-given` run with these wait options; answers its run id once its wait rows are in
 * D1 (unless `indexed` is false: a look back may resolve the wait as its rows are stored).
 */
async function startWait(key: string, wait: Record<string, unknown>, extra: Record<string, unknown> = {}, indexed = true): Promise<string> {
  const [eventId] = await sendEvents({ name: "test/waits.given", data: { key, wait, ...extra } });
  const runId = await runIdOf(eventId!);
  if (!indexed) return runId;
  await eventually(async () => {
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM waits WHERE run_id = ?1").bind(runId).first<{ n: number }>();
    return (row?.n ?? 0) > 0 ? true : undefined;
  }, 15_000, `wait rows of ${runId}`);
  return runId;
}

async function finished(runId: string, timeoutMs = 20_000): Promise<RunJson & { output: GivenOutput }> {
  return eventually(async () => {
    const run = await getRun(runId);
    return ["Completed", "Failed", "Cancelled"].includes(run.status) ? (run as RunJson & { output: GivenOutput }) : undefined;
  }, timeoutMs, `the end of run ${runId}`);
}

/** Waits until the consumer has dispatched every event of `name` (looked each up in the waits index). */
async function allDispatched(name: string): Promise<void> {
  await eventually(async () => {
    const row = await env.DB.prepare(`SELECT COUNT(*) AS n FROM events WHERE name = ?1 AND ${dispatchedAtSql()} IS NULL`).bind(name).first<{ n: number }>();
    return row?.n === 0 ? true : undefined;
  }, 30_000, `dispatch of the events of ${name}`);
}

describe("waits: a plain equality over lists, maps and null (issue 20, item 10)", () => {
  for (const [kind, value, other, sent] of [
    ["a list", ["a", "b"], ["b", "a"], ["a", "b"]],
    ["a map, its keys in another order", { plan: "pro", seats: 3 }, { plan: "pro", seats: 4 }, { seats: 3, plan: "pro" }],
    ["null", null, "null", null],
  ] as const) {
    it(`resumes on \`async.data.tags == event.data.tags\` over ${kind}`, async () => {
      const key = uniqueKey("equal");
      const name = `test/waits.equal-${key}`;
      const runId = await startWait(key, { event: name, if: "async.data.tags == event.data.tags", timeout: "10s" }, { tags: value });
      await sendEvents({ name, data: { tags: other, n: 1 } });
      await sendEvents({ name, data: { tags: sent, n: 2 } });
      expect((await finished(runId)).output).toEqual({ reply: { name, data: { tags: sent, n: 2 } } });
    });
  }
});

/** Stores `count` wait rows for `name` (of runs that do not exist: the lookups below never deliver) and answers their run ids. */
async function openWaits(name: string, count: number, condition: { match?: string; if?: string }, triggerData: (i: number) => Record<string, unknown>): Promise<string[]> {
  const runIds = Array.from({ length: count }, () => uniqueKey("no-run"));
  const rows = runIds.flatMap((runId, i) =>
    waitRows("wait", runId, "reply", { id: runId, name: "test/none", data: triggerData(i), ts: 0 }, [{ event: name, ...condition }], 0, () => Date.now() + 3_600_000),
  );
  await env.DB.batch(insertWaitStatements(env.DB, rows));
  return runIds;
}

async function closeWaits(runIds: string[]): Promise<void> {
  await env.DB.prepare("DELETE FROM waits WHERE run_id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(runIds)).run();
}

describe("waits: what an equality over lists costs (issue 20, item 10)", () => {
  it("looks a list up by its key: an event reads its own wait's row, not the others of its name", async () => {
    const name = `test/waits.lists-${uniqueKey("cost")}`;
    const runIds = await openWaits(name, 50, { if: "async.data.tags == event.data.tags" }, (i) => ({ tags: [`t${i}`, "shared"] }));
    const probe: StoredEvent = { id: "probe", name, data: { tags: ["t7", "shared"], n: 1 }, ts: Date.now() };
    const lookup = await findWaitsStatement(env.DB, name, eventMatchKeys(probe)!, Date.now()).all<{ run_id: string }>();
    expect(lookup.results.map((row) => row.run_id)).toEqual([runIds[7]]);
    // The probe's keys (json_each) and the index entries they visit: a handful, not the 50 waits.
    expect(lookup.meta.rows_read).toBeLessThan(25);
    await closeWaits(runIds);
  });
});

describe("waits: fields past an event's first 256, at any depth (issue 20, item 11)", () => {
  it("resumes on a `match` field after an event's first 256 fields", async () => {
    const key = uniqueKey("wide");
    const name = `test/waits.wide-${key}`;
    const runId = await startWait(key, { event: name, match: "data.f299", timeout: "10s" }, { f299: key });
    const fields = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, i === 299 ? key : `v${i}`]));
    await sendEvents({ name, data: fields });
    expect((await finished(runId)).output.reply).toMatchObject({ name, data: { f299: key } });
  });

  it("resumes on a `match` field 7 levels deep", async () => {
    const key = uniqueKey("deep");
    const name = `test/waits.deep-${key}`;
    const deep = (leaf: unknown) => ({ a: { b: { c: { d: { e: { f: { g: leaf } } } } } } });
    const runId = await startWait(key, { event: name, match: "data.a.b.c.d.e.f.g", timeout: "10s" }, deep(key));
    await sendEvents({ name, data: deep(`${key}-other`) });
    await sendEvents({ name, data: { ...deep(key), n: 2 } });
    expect((await finished(runId)).output.reply).toEqual({ name, data: { ...deep(key), n: 2 } });
  });
});

describe("waits: what an event with more than 256 fields costs (issue 20, item 11)", () => {
  it("asks which paths the waits of its name use, then reads only its own wait's row", async () => {
    const name = `test/waits.wide-cost-${uniqueKey("cost")}`;
    const runIds = [
      ...(await openWaits(name, 40, { match: "data.f299" }, (i) => ({ f299: `v${i}` }))),
      ...(await openWaits(name, 40, { match: "data.f3" }, (i) => ({ f3: `w${i}` }))),
    ];
    const wide: StoredEvent = { id: "probe", name, data: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, i === 299 ? "v7" : `x${i}`])), ts: Date.now() };
    expect(eventMatchKeys(wide)).toBeNull();
    const paths = await keyPathsStatement(env.DB, name).all<{ key: string }>();
    expect(paths.results).toHaveLength(2);
    // One index entry per path, and one to learn there is none after the last: not the 80 waits.
    expect(paths.meta.rows_read).toBeLessThan(10);
    const keys = paths.results.flatMap((row) => eventKeyAt(wide, row.key) ?? []);
    expect(keys).toEqual(expect.arrayContaining(['data.f299="v7"', 'data.f3="x3"']));
    const lookup = await findWaitsStatement(env.DB, name, keys, Date.now()).all<{ run_id: string }>();
    expect(lookup.results.map((row) => row.run_id)).toEqual([runIds[7]]);
    expect(lookup.meta.rows_read).toBeLessThan(10);
    await closeWaits(runIds);
  });
});

describe("waits: look back (issue 20, item 11)", () => {
  it("finds the event that raced the wait after 1,000 other events of its name in its window", async () => {
    const key = uniqueKey("raced");
    const name = `test/waits.busy-${key}`;
    await sendEvents(Array.from({ length: 1000 }, (_, i) => ({ name, data: { key: `${key}-${i}` } })));
    await sendEvents({ name, data: { key, raced: true } });
    await allDispatched(name);
    const runId = await startWait(key, { event: name, match: "data.key", lookback: "5m", timeout: "10s" }, {}, false);
    expect((await finished(runId)).output.reply).toEqual({ name, data: { key, raced: true } });
  }, 60_000);

  it("reads its window a page at a time, newest first, and warns on the run where it cuts the window", async () => {
    const key = uniqueKey("cut");
    const name = `test/waits.cut-${key}`;
    const at = Date.now();
    // One request: 26 events received in the same millisecond, the matching one stored first (the oldest).
    await insertEvents(env, [{ id: uniqueKey("match"), name, data: { key }, ts: at }, ...Array.from({ length: 25 }, (_, i) => ({ id: uniqueKey("other"), name, data: { key: `${key}-${i}` }, ts: at }))], at);
    const rowsOf = (runId: string) => waitRows("wait", runId, "reply", { id: runId, name: "test/none", data: { key }, ts: at }, [{ event: name, match: "data.key" }], at - 60_000, () => at + 3_600_000);
    const warn = vi.spyOn(console, "warn");
    try {
      const whole = uniqueKey("whole");
      const found = await registerWaits(env, rowsOf(whole), { pageSize: 10, maxEvents: 100 });
      expect(found.map((match) => match.accepted.event.data)).toEqual([{ key }]);
      expect(warn.mock.calls.flat().some((line) => String(line).includes(whole))).toBe(false);

      const cut = uniqueKey("cut");
      expect(await registerWaits(env, rowsOf(cut), { pageSize: 10, maxEvents: 20 })).toEqual([]);
      const line = warn.mock.calls.flat().map(String).find((entry) => entry.includes(cut));
      expect(JSON.parse(line!)).toMatchObject({ level: "warn", run_id: cut, limit: "waits.lookback_events", message: expect.stringMatching(/read only the newest 20 events/) });
      await closeWaits([whole, cut]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe("waits: which event resolves a wait (issue 20, item 12)", () => {
  it("mode any with look back returns the earliest event, not the first condition's", async () => {
    const key = uniqueKey("earliest");
    const [first, second] = [`test/waits.a-${key}`, `test/waits.b-${key}`];
    // The second condition's event comes first.
    await sendEvents({ name: second, data: { key } });
    await sendEvents({ name: first, data: { key } });
    await allDispatched(second);
    await allDispatched(first);
    const runId = await startWait(key, { events: [first, second], mode: "any", match: "data.key", lookback: "5m", timeout: "10s" }, {}, false);
    expect((await finished(runId)).output.reply).toEqual({ name: second, data: { key } });
  });

  it("an event received before the wait's timeout resolves it though it is processed after", async () => {
    const key = uniqueKey("late");
    const name = `test/waits.late-${key}`;
    // The run stays in one invocation (a step holds it) until the test releases it: nothing times the wait out meanwhile.
    const runId = await startWait(key, { event: name, match: "data.key", timeout: "2s" }, { hold: true });
    await eventually(async () => ((await env.DB.prepare("SELECT 1 FROM test_effects WHERE key = ?1").bind(`${key}:holding`).first()) ? true : undefined));
    const row = await env.DB.prepare("SELECT expires_at FROM waits WHERE run_id = ?1").bind(runId).first<{ expires_at: number }>();
    const timeoutAt = row!.expires_at;
    // The event was received 1 ms before the timeout; the consumer gets to it after the timeout.
    await eventually(async () => (Date.now() > timeoutAt ? true : undefined), 10_000, "the wait's timeout to pass");
    const accepted = { event: { id: uniqueKey("late-event"), name, data: { key }, ts: timeoutAt - 1 }, receivedAt: timeoutAt - 1 };
    const matches = await findMatchingWaits(env, [accepted], Date.now());
    expect(matches.map((match) => match.row.run_id)).toEqual([runId]);
    expect((await deliverMatches(env, matches)).failed).toEqual([]);
    await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(`${key}:release`).run();
    expect((await finished(runId)).output.reply).toEqual({ name, data: { key } });
  });

  it("a run idle at its timeout takes an event received before it that the queue has not brought yet", async () => {
    const key = uniqueKey("idle");
    const name = `test/waits.idle-${key}`;
    const runId = await startWait(key, { event: name, match: "data.key", timeout: "3s" });
    const row = await env.DB.prepare("SELECT expires_at FROM waits WHERE run_id = ?1").bind(runId).first<{ expires_at: number }>();
    const timeoutAt = row!.expires_at;
    // In the log 5 ms before the timeout, as the ingest writes it, and never put on the queue: the
    // consumer has not reached it when the run wakes to time out.
    const event = { id: uniqueKey("idle-event"), name, data: { key }, ts: timeoutAt - 5 };
    expect(Date.now()).toBeLessThan(timeoutAt - 5);
    await insertEvents(env, [event], timeoutAt - 5);
    const run = await finished(runId);
    expect(run.output.reply).toEqual({ name, data: { key } });
    // An event received at the timeout itself is too late.
    const lateKey = uniqueKey("idle-late");
    const lateName = `test/waits.idle-late-${lateKey}`;
    const lateRunId = await startWait(lateKey, { event: lateName, match: "data.key", timeout: "3s" });
    const lateRow = await env.DB.prepare("SELECT expires_at FROM waits WHERE run_id = ?1").bind(lateRunId).first<{ expires_at: number }>();
    await insertEvents(env, [{ id: uniqueKey("idle-late-event"), name: lateName, data: { key: lateKey }, ts: lateRow!.expires_at }], lateRow!.expires_at);
    expect((await finished(lateRunId)).output.reply).toBeNull();
  });
});
