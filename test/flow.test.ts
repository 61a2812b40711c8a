import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { flowObject } from "../worker/flow/admission.ts";
import { instrument } from "../worker/platform/bindings.ts";
import { fireCronTrigger, runDueCrons } from "../worker/schedule/crons.ts";
import { eventually, getRun, request, runIdOf, runsOf, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";

const FINAL = new Set(["Completed", "Failed", "Cancelled", "Skipped"]);

/** The runs of `functionId` that these events started, from the runs index, once `count` have ended. */
async function runsOfFunction(functionId: string, eventIds: string[], count: number): Promise<(RunJson & { skip_reason?: string | null })[]> {
  return eventually(
    async () => {
      const lists = await Promise.all(eventIds.map((id) => runsOf(id)));
      const runs = lists.flat().filter((run) => run.function_id === functionId);
      return runs.length === count && runs.every((run) => FINAL.has(run.status)) ? runs : undefined;
    },
    20_000,
    `${count} finished runs of ${functionId}`,
  );
}

describe("idempotency", () => {
  it("starts one run per key value, whatever the number of events", async () => {
    const orderId = uniqueKey("order");
    const ids = await sendEvents([1, 2, 3].map((n) => ({ name: "test/flow.idempotent", data: { orderId, n } })));
    const other = await sendEvents({ name: "test/flow.idempotent", data: { orderId: `${orderId}-b` } });
    const runs = await runsOfFunction("flow-idempotent", [...ids, ...other], 2);
    expect(runs.map((run) => run.output).sort()).toEqual([{ orderId }, { orderId: `${orderId}-b` }]);
  });
});

describe("rateLimit", () => {
  it("skips runs beyond the limit per key, and records each skip", async () => {
    const user = uniqueKey("user");
    const ids = await sendEvents([1, 2, 3, 4, 5].map((n) => ({ name: "test/flow.rate-limited", data: { user, n } })));
    const otherUser = await sendEvents({ name: "test/flow.rate-limited", data: { user: `${user}-b`, n: 9 } });
    const runs = await runsOfFunction("flow-rate-limited", ids, 5);
    // 2 per minute: one run per 30 s bucket, so of five at once, one runs.
    expect(runs.filter((run) => run.status === "Completed")).toHaveLength(1);
    const skipped = runs.filter((run) => run.status === "Skipped");
    expect(skipped).toHaveLength(4);
    expect(skipped[0]!.skip_reason).toMatch(/rateLimit/);
    // A skipped run is visible on its own too.
    expect(await getRun(skipped[0]!.run_id)).toMatchObject({ status: "Skipped", steps: [] });
    expect((await runsOfFunction("flow-rate-limited", otherUser, 1))[0]!.status).toBe("Completed");
  });
});

describe("rateLimit, as Inngest documents it", () => {
  it("admits at most limit runs in any period: one per period / limit (fake time)", async () => {
    const stub = flowObject(env, "flow-rate-limited", "rateLimit", uniqueKey("fake"));
    const hour = 3_600_000;
    const t0 = Date.UTC(2100, 0, 1);
    const admit = async (n: number, at: number) => (await stub.admit({ kind: "rateLimit", runId: `r${n}`, limit: 10, period: hour }, at)).start;
    // An event a minute for two hours: 10 in the first hour, and no more than 10 in any hour.
    const admitted: number[] = [];
    for (let minute = 0; minute < 120; minute++) if (await admit(minute, t0 + minute * 60_000)) admitted.push(minute);
    expect(admitted.filter((minute) => minute < 60)).toHaveLength(10);
    for (let start = 0; start < 60; start++) expect(admitted.filter((minute) => minute >= start && minute < start + 60).length).toBeLessThanOrEqual(10);
    // Ten at once later: one of them.
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => admit(1000 + i, t0 + 10 * hour)));
    expect(burst.filter(Boolean)).toHaveLength(1);
  });
});

describe("throttle", () => {
  it("delays starts beyond limit + burst, spaced period / limit apart, and drops none", async () => {
    const group = uniqueKey("group");
    const ids = await sendEvents([0, 1, 2, 3, 4].map((n) => ({ name: "test/flow.throttled-slowly", data: { group, n } })));
    // limit 2 + burst 1 start at once; the other two wait for their turn in the throttle's queue, minutes away
    // (a turn that came while the test looked would take the run's alarm with it).
    const throttle = flowObject(env, "flow-throttled-slowly", "throttle", group);
    const waiting = await eventually(async () => {
      const rows = await runInDurableObject(throttle, (_, state) => state.storage.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting ORDER BY order_key, rowid").toArray());
      return rows.length === 2 ? rows : undefined;
    }, 20_000, "two runs waiting for their start");
    const finished = await eventually(async () => {
      const runs = (await Promise.all(ids.map((id) => runsOf(id)))).flat();
      return runs.length === 5 && runs.filter((run) => FINAL.has(run.status)).length === 3 ? runs : undefined;
    }, 20_000, "three runs finished");
    expect(finished.filter((run) => run.status === "Queued")).toHaveLength(2);
    // Each waiting run's alarm stands at its expected turn (plus the same recheck margin): 5 minutes apart (10 m / 2).
    const alarms = await Promise.all(waiting.map(({ run_id }) => runInDurableObject(env.RUNS.get(env.RUNS.idFromName(run_id)), (_, state) => state.storage.getAlarm())));
    expect(alarms[1]! - alarms[0]!).toBe(300_000);
    for (const { run_id } of waiting) expect((await request(`/v1/runs/${run_id}`, { method: "DELETE" })).status).toBe(200);
  });

  it("takes a run cancelled while it waits for its start out of the throttle's queue at once", async () => {
    const group = uniqueKey("group");
    const ids = await sendEvents([0, 1, 2, 3, 4].map((n) => ({ name: "test/flow.throttled", data: { group, n } })));
    const throttle = flowObject(env, "flow-throttled", "throttle", group);
    const waitingIds = () => runInDurableObject(throttle, (_, state) => state.storage.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting ORDER BY order_key, rowid").toArray().map((row) => row.run_id));
    const [first] = await eventually(async () => {
      const ids = await waitingIds();
      return ids.length === 2 ? ids : undefined;
    }, 20_000, "two runs waiting for their start");
    expect((await request(`/v1/runs/${first}`, { method: "DELETE" })).status).toBe(200);
    // Its place goes with it, so the run behind it takes the next turn.
    await eventually(async () => ((await waitingIds()).includes(first!) ? undefined : true), 15_000, "the cancelled run out of the queue");
    const runs = await eventually(async () => {
      const list = (await Promise.all(ids.map((id) => runsOf(id)))).flat();
      return list.length === 5 && list.every((run) => FINAL.has(run.status)) ? list : undefined;
    }, 30_000, "every run ended");
    expect(runs.filter((run) => run.status === "Cancelled").map((run) => run.run_id)).toEqual([first]);
    // It never took a turn: no start was granted to it (a grant spends one of the throttle's starts).
    const granted = await runInDurableObject(throttle, (_, state) => state.storage.sql.exec<{ run_id: string }>("SELECT run_id FROM decisions").toArray().map((row) => row.run_id));
    expect(granted).not.toContain(first);
    expect(granted).toHaveLength(4);
  }, 60_000);

  it("paces starts by GCRA in the coordinator, in priority order (fake time)", async () => {
    const stub = flowObject(env, "flow-throttled", "throttle", uniqueKey("fake"));
    // In the future, so the coordinator's alarm (at real time) never grants a start behind the test's back.
    const t0 = Date.UTC(2100, 0, 1);
    const rate = { limit: 1, period: 60_000, burst: 2 };
    const ask = (run: string, now: number, orderKey = now) => stub.acquireStart(run, rate, orderKey, now);
    expect([await ask("r1", t0), await ask("r2", t0)]).toEqual([{ granted: true }, { granted: true }]);
    expect(await ask("r3", t0)).toEqual({ granted: false, estimate: t0 + 60_000 });
    expect(await ask("r4", t0 + 1000)).toEqual({ granted: false, estimate: t0 + 120_000 });
    // Ten minutes of priority puts r5 ahead of both: r3's turn moves back one period.
    expect(await ask("r5", t0 + 2000, t0 + 2000 - 600_000)).toEqual({ granted: false, estimate: t0 + 60_000 });
    expect(await ask("r3", t0 + 5000)).toEqual({ granted: false, estimate: t0 + 120_000 });
    // At r3's old turn the start goes to r5; r3 and r4 follow a period apart, none dropped.
    expect(await ask("r3", t0 + 60_000)).toEqual({ granted: false, estimate: t0 + 120_000 });
    expect(await ask("r3", t0 + 120_000)).toEqual({ granted: true });
    expect(await ask("r4", t0 + 180_000)).toEqual({ granted: true });
    // A run granted once is granted again (its first invocation repeated after a crash), and a quiet
    // throttle starts the next run at once.
    expect(await ask("r3", t0 + 190_000)).toEqual({ granted: true });
    expect(await ask("r6", t0 + 400_000)).toEqual({ granted: true });
  });

  it("priority moves a run waiting for its start ahead of those that came before it", async () => {
    const group = uniqueKey("throttle-prio");
    const ids = await sendEvents([0, 1, 2].map((n) => ({ name: "test/flow.throttled-priority", data: { group, n } })));
    // n=0 starts at once; once 1 and 2 wait for theirs, the prioritized run comes.
    const throttle = flowObject(env, "flow-throttled-priority", "throttle", group);
    await eventually(async () => {
      const waiting = await runInDurableObject(throttle, (_, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM waiting").one().n);
      return waiting === 2 ? true : undefined;
    }, 20_000, "two runs waiting for their start");
    ids.push(...(await sendEvents({ name: "test/flow.throttled-priority", data: { group, n: 3, priority: 600 } })));
    const runs = await runsOfFunction("flow-throttled-priority", ids, 4);
    const order = runs.map((run) => run.output as { n: number; startedAt: number }).sort((a, b) => a.startedAt - b.startedAt).map((output) => output.n);
    // One of the three sent together started first (they came in the same millisecond: which one
    // reached the throttle first is a race between their objects); the prioritized run went next,
    // ahead of the two that were waiting before it came.
    expect(order[1]).toBe(3);
    expect([...order].sort()).toEqual([0, 1, 2, 3]);
  });
});

describe("debounce", () => {
  it("starts one run with the last event after the period of quiet, per key", async () => {
    const key = uniqueKey("debounce");
    const ids = await sendEvents([1, 2, 3].map((n) => ({ name: "test/flow.debounced", data: { key, n } })));
    const other = await sendEvents({ name: "test/flow.debounced", data: { key: `${key}-b`, n: 7 } });
    // The run is the last event's.
    const [run] = await runsOfFunction("flow-debounced", [ids[2]!], 1);
    expect(run).toMatchObject({ status: "Completed", output: { last: 3, count: 1 } });
    expect((await runsOf(ids[0]!)).filter((r) => r.function_id === "flow-debounced")).toHaveLength(0);
    expect((await runsOfFunction("flow-debounced", other, 1))[0]!.output).toEqual({ last: 7, count: 1 });
  });

  it("events: all hands the run every debounced event", async () => {
    const key = uniqueKey("debounce-all");
    const ids = await sendEvents([1, 2, 3].map((n) => ({ name: "test/flow.debounced-all", data: { key, n } })));
    const [run] = await runsOfFunction("flow-debounced-all", [ids[0]!], 1);
    expect(run!.output).toEqual({ ns: [1, 2, 3] });
  });
});

describe("batchEvents", () => {
  it("starts a run per maxSize events at once, and one for the rest after the timeout", async () => {
    const key = uniqueKey("batch");
    const ids = await sendEvents([1, 2, 3, 4, 5, 6, 7].map((n) => ({ name: "test/flow.batched", data: { key, n } })));
    const runs = await runsOfFunction("flow-batched", ids, 3);
    const batches = runs.map((run) => (run.output as { ns: number[] }).ns);
    // Every event in exactly one run: two full batches at once, the rest after the timeout. (Which
    // events share a batch follows the order the consumer's concurrent dispatches reach the
    // coordinator, which a burst does not fix.)
    expect(batches.map((ns) => ns.length).sort()).toEqual([1, 3, 3]);
    expect(batches.flat().sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const run of runs) expect((run.output as { first: number; ns: number[] }).first).toBe((run.output as { ns: number[] }).ns[0]);
  });
});

describe("keys", () => {
  it("deduplicates no event that lacks the idempotency key, and keeps 1 and \"1\" apart", async () => {
    const missing = await sendEvents([{ name: "test/flow.idempotent", data: {} }, { name: "test/flow.idempotent", data: {} }]);
    const runs = await runsOfFunction("flow-idempotent", missing, 2);
    expect(runs.map((run) => run.status)).toEqual(["Completed", "Completed"]);
    const orderId = Date.now();
    const typed = await sendEvents([{ name: "test/flow.idempotent", data: { orderId } }, { name: "test/flow.idempotent", data: { orderId: String(orderId) } }]);
    expect(await runsOfFunction("flow-idempotent", typed, 2)).toHaveLength(2);
  });
});

describe("batches and debounces, in time", () => {
  it("times a new batch from its own first event, not from an alarm the batch before it left", async () => {
    const key = uniqueKey("batch-slowly");
    const full = await sendEvents([1, 2, 3].map((n) => ({ name: "test/flow.batched-slowly", data: { key, n } })));
    await runsOfFunction("flow-batched-slowly", full, 1);
    const sentAt = Date.now();
    const [x] = await sendEvents({ name: "test/flow.batched-slowly", data: { key, n: 4 } });
    const coordinator = flowObject(env, "flow-batched-slowly", "batchEvents", key);
    await eventually(async () => ((await runInDurableObject(coordinator, (_, state) => state.storage.sql.exec("SELECT 1 FROM pending WHERE released_at IS NULL").toArray().length)) === 1 ? true : undefined));
    // X's batch times out 10 s after X, whatever alarm the full batch before it left.
    expect(await runInDurableObject(coordinator, (_, state) => state.storage.getAlarm())).toBeGreaterThanOrEqual(sentAt + 10_000);
    const rest = await sendEvents([5, 6].map((n) => ({ name: "test/flow.batched-slowly", data: { key, n } })));
    const [run] = await runsOfFunction("flow-batched-slowly", [x!, ...rest], 1);
    expect(run!.output).toEqual({ ns: [4, 5, 6] });
  });

  it("starts a debounced or batched run no sooner than its events' future ts", async () => {
    const key = uniqueKey("future");
    const ts = Date.now() + 3_600_000;
    const [debounced] = await sendEvents({ name: "test/flow.debounced", data: { key, n: 1 }, ts });
    const batched = await sendEvents([1, 2, 3].map((n) => ({ name: "test/flow.batched", data: { key, n }, ts })));
    for (const eventId of [debounced!, batched[0]!]) {
      const [run] = await eventually(async () => {
        const runs = await runsOf(eventId);
        return runs.length === 1 ? runs : undefined;
      }, 15_000, "the collected run");
      // Queued, with its object's alarm at the events' ts.
      expect((await getRun(run!.run_id)).status).toBe("Queued");
      expect(await runInDurableObject(env.RUNS.get(env.RUNS.idFromName(run!.run_id)), (_, state) => state.storage.getAlarm())).toBe(ts);
      await request(`/v1/runs/${run!.run_id}`, { method: "DELETE" });
    }
  });
});

describe("flow-control config", () => {
  it("lists a function's flow control in GET /v1/functions", async () => {
    const body = (await (await request("/v1/functions")).json()) as { data: { id: string; config: Record<string, unknown> }[] };
    expect(body.data.find((fn) => fn.id === "flow-throttled")?.config).toMatchObject({ throttle: { limit: 2, period: 10_000, burst: 1 } });
  });
});

/** The spans the concurrency function recorded for `group`, once there are `count`. */
async function spans(group: string, count: number): Promise<{ start: number; end: number; label: string }[]> {
  return eventually(async () => {
    const { results } = await env.DB.prepare("SELECT key FROM test_effects WHERE CASE WHEN json_valid(key) THEN json_extract(key, '$.group') END = ?1")
      .bind(group)
      .all<{ key: string }>();
    return results.length >= count ? results.map((row) => JSON.parse(row.key) as { start: number; end: number; label: string }) : undefined;
  }, 90_000, `${count} spans of ${group}`);
}

/** The run ids in a coordinator's `waiting` or `leases` table. */
function coordinatorRows(queue: ReturnType<typeof flowObject>, table: "waiting" | "leases"): Promise<string[]> {
  return runInDurableObject(queue, (_, state) => state.storage.sql.exec<{ run_id: string }>(`SELECT run_id FROM ${table}`).toArray().map((row) => row.run_id));
}

/**
 * Starts two gated runs of flow-concurrency for `tenant` and answers once both hold the tenant's
 * two slots: runs sent after them queue behind them, whatever order the function's limit of 5
 * (shared with other tests' runs) lets them through in.
 */
async function holdTenantSlots(group: string, gate: (n: number) => string): Promise<void> {
  const ids = await sendEvents([0, 1].map((n) => ({ name: "test/flow.concurrency", data: { group, n, tenant: group, gate: gate(n) } })));
  const holders = await Promise.all(ids.map((id) => runIdOf(id)));
  const tenant = flowObject(env, "flow-concurrency", "concurrency:1", group);
  await eventually(async () => {
    const leases = await coordinatorRows(tenant, "leases");
    return holders.every((id) => leases.includes(id)) ? true : undefined;
  }, 60_000, "the two gated runs holding the tenant's slots");
}

/** Lets a gated run of flow-concurrency go on. */
async function openGate(gate: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(gate).run();
}

/** The most spans that overlap at any instant. */
function maxOverlap(list: { start: number; end: number }[]): number {
  const edges = list.flatMap((s) => [{ at: s.start, d: 1 }, { at: s.end, d: -1 }]).sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const edge of edges) max = Math.max(max, (now += edge.d));
  return max;
}

describe("concurrency", () => {
  it("never runs more than the limit at once: 50 runs, limit 5 (and 2 per tenant)", async () => {
    const group = uniqueKey("conc");
    await sendEvents(Array.from({ length: 50 }, (_, n) => ({ name: "test/flow.concurrency", data: { group, n, tenant: `t${n % 10}` } })));
    const all = await spans(group, 50);
    expect(all).toHaveLength(50);
    expect(maxOverlap(all)).toBeLessThanOrEqual(5);
    for (let t = 0; t < 10; t++) expect(maxOverlap(all.filter((s) => s.label.startsWith(`t${t}:`)))).toBeLessThanOrEqual(2);
  }, 120_000);

  it("keyed limits are independent: one tenant's queue does not hold another's runs", async () => {
    const group = uniqueKey("conc-key");
    // Tenant a: 4 long runs, 2 at a time. Tenant b's run starts meanwhile.
    await sendEvents([0, 1, 2, 3].map((n) => ({ name: "test/flow.concurrency", data: { group, n, tenant: "a", ms: 600 } })));
    await sendEvents({ name: "test/flow.concurrency", data: { group, n: 9, tenant: "b", ms: 10 } });
    const all = await spans(group, 5);
    const b = all.find((s) => s.label === "b:9")!;
    const lastA = Math.max(...all.filter((s) => s.label.startsWith("a:")).map((s) => s.start));
    expect(b.start).toBeLessThan(lastA);
  }, 60_000);

  it("gives a cancelled queued run's place to the run behind it at once, never leasing it a slot", async () => {
    const group = uniqueKey("conc-cancel");
    const gate = (n: number) => `${group}:gate:${n}`;
    // Two hold the tenant's slots behind their gates; B and C queue.
    await holdTenantSlots(group, gate);
    const ids = await sendEvents([2, 3].map((n) => ({ name: "test/flow.concurrency", data: { group, n, tenant: group, ms: 10 } })));
    const tenant = flowObject(env, "flow-concurrency", "concurrency:1", group);
    const global = flowObject(env, "flow-concurrency", "concurrency:0", "");
    const [b, c] = await Promise.all(ids.map((id) => runIdOf(id)));
    await eventually(async () => {
      const waiting = [...(await coordinatorRows(tenant, "waiting")), ...(await coordinatorRows(global, "waiting"))];
      return waiting.includes(b!) && waiting.includes(c!) ? true : undefined;
    }, 60_000, "B and C waiting for a slot");
    expect((await request(`/v1/runs/${b}`, { method: "DELETE" })).status).toBe(200);
    // B holds nothing: its place in the queues goes at once, not when a lease granted to it expires.
    await eventually(async () => {
      const held = [...(await coordinatorRows(tenant, "waiting")), ...(await coordinatorRows(tenant, "leases")), ...(await coordinatorRows(global, "waiting")), ...(await coordinatorRows(global, "leases"))];
      return held.includes(b!) ? undefined : true;
      // Under the 30 s lease (LEASE_MS) a slot granted to B would hold: sooner means its place went with the cancel.
    }, 25_000, "B out of every queue");
    await openGate(gate(0));
    await openGate(gate(1));
    const all = await spans(group, 3);
    expect(all.map((s) => s.label.split(":")[1]).sort()).toEqual(["0", "1", "3"]);
    expect((await getRun(b!)).status).toBe("Cancelled");
    expect([...(await coordinatorRows(tenant, "leases")), ...(await coordinatorRows(global, "leases"))]).not.toContain(b);
  }, 120_000);

  it("cancels a run that waits for its slot past timeouts.start, and gives its place to the next", async () => {
    const group = uniqueKey("start-bounded");
    const gate = `${group}:gate`;
    const [a] = await sendEvents({ name: "test/flow.start-bounded", data: { group, n: 0, gate } });
    await runIdOf(a!);
    const [b] = await sendEvents({ name: "test/flow.start-bounded", data: { group, n: 1 } });
    const bRun = await runIdOf(b!);
    // B waits behind A longer than its 2 s: it is cancelled then (not when its slot is next asked for).
    const cancelled = await eventually(async () => {
      const run = await getRun(bRun);
      return run.status === "Cancelled" ? run : undefined;
    }, 20_000, "B cancelled for its start timeout");
    expect(cancelled.status).toBe("Cancelled");
    const queue = flowObject(env, "flow-start-bounded", "concurrency:0", group);
    await eventually(async () => {
      const waiting = await runInDurableObject(queue, (_, state) => state.storage.sql.exec<{ run_id: string }>("SELECT run_id FROM waiting").toArray().map((row) => row.run_id));
      return waiting.includes(bRun) ? undefined : true;
    }, 15_000, "B out of the queue");
    // A ends; C comes and takes the slot A gave back, within its own start timeout.
    await openGate(gate);
    await eventually(async () => ((await getRun(await runIdOf(a!))).status === "Completed" ? true : undefined), 20_000, "A completed");
    const [c] = await sendEvents({ name: "test/flow.start-bounded", data: { group, n: 2 } });
    const cRun = await runIdOf(c!);
    const ended = await eventually(async () => {
      const run = await getRun(cRun);
      return FINAL.has(run.status) ? run : undefined;
    }, 20_000, "C ended");
    expect(ended.status).toBe("Completed");
  }, 90_000);

  it("wakes a run whose wait is resolved while its invocation gives its slots back", async () => {
    const key = uniqueKey("late-resolution");
    const [eventId] = await sendEvents({ name: "test/flow.waits-under-limit", data: { key, gate: `${key}:gate` } });
    const runId = await runIdOf(eventId!);
    const stub = env.RUNS.get(env.RUNS.idFromName(runId));
    // While the run holds at its gate, make its slot release take the event first: the resolution
    // comes after the invocation recorded its wait (due in an hour) and before it has ended.
    await runInDurableObject(stub, (instance) => {
      const object = instance as unknown as { slots: { release: (...args: unknown[]) => Promise<unknown> }; store: { steps(): Map<string, { id: string; status: string }> } };
      const release = object.slots.release.bind(object.slots);
      object.slots.release = async (...args: unknown[]) => {
        const waiting = [...object.store.steps().values()].find((step) => step.status === "waiting");
        if (waiting) await instance.resolveWait(waiting.id, 0, { id: `${key}-reply`, name: "test/flow.waits-under-limit.reply", data: { key }, ts: Date.now() });
        return release(...args);
      };
    });
    await openGate(`${key}:gate`);
    const run = await eventually(async () => {
      const found = await getRun(runId);
      return found.status === "Completed" ? found : undefined;
    }, 20_000, "the run completed with its reply");
    expect(run.output).toEqual({ key, replied: true });
  }, 60_000);

  it("priority moves a queued run ahead of those waiting before it", async () => {
    const group = uniqueKey("conc-prio");
    const gate = (n: number) => `${group}:gate:${n}`;
    // One tenant, 2 at a time: the first two take the slots and hold them until their gates open, the rest queue.
    await holdTenantSlots(group, gate);
    const ids = await sendEvents([2, 3, 4].map((n) => ({ name: "test/flow.concurrency", data: { group, n, tenant: group, ms: 10 } })));
    // Queued in the tenant's limit, or in the function's limit of 5 (which other tests' runs may fill meanwhile).
    const tenant = flowObject(env, "flow-concurrency", "concurrency:1", group);
    const queues = [flowObject(env, "flow-concurrency", "concurrency:0", ""), tenant];
    const allQueued = (runIds: string[], where = queues) =>
      eventually(async () => {
        const waiting = new Set((await Promise.all(where.map((queue) => coordinatorRows(queue, "waiting")))).flat());
        return runIds.every((id) => waiting.has(id)) ? true : undefined;
      }, 60_000, `${runIds.length} runs waiting for a slot`);
    const queued = await Promise.all(ids.map((id) => runIdOf(id)));
    await allQueued(queued);
    // n=5 comes last, with priority; once it waits too, one slot frees: it goes to n=5, ahead of the three queued before it.
    const [prioritized] = await sendEvents({ name: "test/flow.concurrency", data: { group, n: 5, tenant: group, ms: 10, priority: 600 } });
    // All four in the tenant's queue, where the freed slot is given: a run that met the function's limit while another
    // held a slot for a moment (2, 3 and 4 each take one and give it back) waits there first, and moves to the
    // tenant's queue once that slot is granted to it. Judged while 5 still waited there, 2 went first (CI, once).
    await allQueued([...queued, await runIdOf(prioritized!)], [tenant]);
    await openGate(gate(0));
    await spans(group, 2);
    await openGate(gate(1));
    const all = await spans(group, 6);
    const order = all.sort((x, y) => x.start - y.start).map((s) => s.label.split(":")[1]);
    expect(order.indexOf("5")).toBeLessThan(Math.min(order.indexOf("2"), order.indexOf("3"), order.indexOf("4")));
  }, 120_000);
});

describe("singleton", () => {
  it("skip: a run while one with the key is active is skipped", async () => {
    const key = uniqueKey("single");
    const [first] = await sendEvents({ name: "test/flow.singleton-skip", data: { key, n: 1 } });
    await eventually(async () => ((await runsOf(first!)).length === 1 ? true : undefined));
    const [second] = await sendEvents({ name: "test/flow.singleton-skip", data: { key, n: 2 } });
    expect((await runsOfFunction("flow-singleton-skip", [second!], 1))[0]!.status).toBe("Skipped");
    expect((await runsOfFunction("flow-singleton-skip", [first!], 1))[0]!.status).toBe("Completed");
  });

  it("cancel: a new run cancels the active one", async () => {
    const key = uniqueKey("single");
    const [first] = await sendEvents({ name: "test/flow.singleton-cancel", data: { key, n: 1 } });
    await eventually(async () => ((await runsOf(first!)).length === 1 ? true : undefined));
    const [second] = await sendEvents({ name: "test/flow.singleton-cancel", data: { key, n: 2 } });
    expect((await runsOfFunction("flow-singleton-cancel", [first!], 1))[0]!.status).toBe("Cancelled");
    const [run] = await eventually(async () => {
      const list = await runsOf(second!);
      return list.length === 1 ? list : undefined;
    });
    expect(run!.status).toBe("Running");
  });
});

describe("pause and resume", () => {
  const post = (path: string, body?: unknown) => request(path, { method: "POST", headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it("records a paused function's events and starts their runs in order on resume", async () => {
    const orderId = uniqueKey("paused");
    expect((await post("/v1/functions/flow-paused/pause")).status).toBe(200);
    const ids = await sendEvents([1, 2, 3].map((n) => ({ name: "test/flow.paused", data: { orderId, n } })));
    await eventually(async () => {
      const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM paused_events WHERE event_id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(ids)).first<{ n: number }>();
      return row?.n === 3 ? true : undefined;
    });
    for (const id of ids) expect(await runsOf(id)).toHaveLength(0);
    const functions = (await (await request("/v1/functions")).json()) as { data: { id: string; paused: boolean }[] };
    expect(functions.data.find((fn) => fn.id === "flow-paused")?.paused).toBe(true);

    expect(await (await post("/v1/functions/flow-paused/resume")).json()).toMatchObject({ data: { paused: false } });
    const runs = await runsOfFunction("flow-paused", ids, 3);
    expect(runs.every((run) => run.status === "Completed")).toBe(true);
    // Started in the order their events came.
    const starts = await Promise.all(ids.map(async (id) => Date.parse((await runsOf(id))[0]!.run_started_at)));
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
  });

  it("starts no run of a paused function by any way in: cron, step.invoke, invoke, trigger, rerun, a debounce's release", async () => {
    const fnId = "flow-paused-everywhere";
    // A run from before the pause, to rerun while paused.
    const [before] = await sendEvents({ name: "test/flow.paused-everywhere", data: { n: 0 } });
    const done = (await runsOfFunction(fnId, [before!], 1))[0]!;
    expect((await post(`/v1/functions/${fnId}/pause`)).status).toBe(200);
    try {
      // The REST API's ways in answer 409 and start nothing.
      for (const path of [`/v1/functions/${fnId}/invoke`, `/v1/functions/${fnId}/trigger`, `/v1/runs/${done.run_id}/rerun`]) {
        const answer = await post(path);
        expect(answer.status, path).toBe(409);
        expect(((await answer.json()) as { error: string }).error).toMatch(/is paused/);
      }
      // The service binding's invoke answers the same.
      const service = (exports as unknown as { StepflareService: { invoke(id: string, data?: object): Promise<{ status: number; error?: string }> } }).StepflareService;
      expect(await service.invoke(fnId, {})).toMatchObject({ status: 409, error: expect.stringMatching(/is paused/) });
      // A step.invoke of it fails at once, and the parent can catch it.
      const [parentEvent] = await sendEvents({ name: "test/flow.invokes-paused", data: {} });
      const parent = (await runsOfFunction("flow-invokes-paused", [parentEvent!], 1))[0]!;
      expect(parent.output).toEqual({ caught: expect.stringMatching(/flow-paused-everywhere" is paused/) });
      // Its cron's due time passes with a Skipped run, from the tick and from the wrangler.toml trigger alike.
      const now = Date.now();
      await env.DB.prepare("INSERT INTO crons (function_id, cron, timezone, next_at) VALUES (?1, '0 0 1 1 *', 'UTC', ?2) ON CONFLICT(function_id, cron) DO UPDATE SET next_at = excluded.next_at")
        .bind(fnId, now - 1000)
        .run();
      const pass = await runDueCrons(instrument(env), now);
      const mine = pass.started.filter((run) => run.functionId === fnId);
      expect(mine).toEqual([expect.objectContaining({ status: "Skipped", skipReason: "the function is paused" })]);
      expect(await fireCronTrigger(instrument(env), "0 0 1 1 *", now, now)).toEqual([expect.objectContaining({ status: "Skipped" })]);
      const skipped = (await (await request(`/v1/runs/${mine[0]!.runId}`)).json()) as { data: RunJson };
      expect(skipped.data.status).toBe("Skipped");
    } finally {
      await post(`/v1/functions/${fnId}/resume`);
    }
  });

  it("holds the events a debounce collected when its function was paused before the release", async () => {
    const key = uniqueKey("debounce-paused");
    const [id] = await sendEvents({ name: "test/flow.debounced", data: { key, n: 1 } });
    const coordinator = flowObject(env, "flow-debounced", "debounce", key);
    await eventually(async () => ((await runInDurableObject(coordinator, (_, state) => state.storage.sql.exec("SELECT 1 FROM pending WHERE released_at IS NULL").toArray().length)) === 1 ? true : undefined));
    expect((await post("/v1/functions/flow-debounced/pause")).status).toBe(200);
    try {
      // The period ends while paused: the event is held for the resume, and no run starts.
      await eventually(async () => ((await env.DB.prepare("SELECT 1 AS x FROM paused_events WHERE event_id = ?1").bind(id).first()) ? true : undefined), 15_000, "the collected event held");
      expect(await runsOf(id!)).toHaveLength(0);
    } finally {
      await post("/v1/functions/flow-debounced/resume");
    }
    const [run] = await runsOfFunction("flow-debounced", [id!], 1);
    expect(run).toMatchObject({ status: "Completed", output: { last: 1, count: 1 } });
  });

  it("skips the events recorded while paused when the pause said so", async () => {
    expect((await post("/v1/functions/flow-paused/pause", { skip: true })).status).toBe(200);
    const [id] = await sendEvents({ name: "test/flow.paused", data: { n: 1 } });
    await eventually(async () => ((await env.DB.prepare("SELECT 1 AS x FROM paused_events WHERE event_id = ?1").bind(id).first()) ? true : undefined));
    await post("/v1/functions/flow-paused/resume");
    expect((await runsOfFunction("flow-paused", [id!], 1))[0]).toMatchObject({ status: "Skipped", skip_reason: expect.stringMatching(/paused/) });
  });

  it("answers 404 for an unknown function, 409 for resuming one not paused, 400 for a bad body", async () => {
    expect((await post("/v1/functions/nope/pause")).status).toBe(404);
    expect((await post("/v1/functions/flow-idempotent/resume")).status).toBe(409);
    expect((await post("/v1/functions/flow-idempotent/pause", { skip: "yes" })).status).toBe(400);
  });
});
