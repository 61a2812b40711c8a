import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { flowObject } from "../worker/flow.ts";
import { eventually, getRun, request, runsOf, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";

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
    expect(runs.filter((run) => run.status === "Completed")).toHaveLength(2);
    const skipped = runs.filter((run) => run.status === "Skipped");
    expect(skipped).toHaveLength(3);
    expect(skipped[0]!.skip_reason).toMatch(/rateLimit/);
    // A skipped run is visible on its own too.
    expect(await getRun(skipped[0]!.run_id)).toMatchObject({ status: "Skipped", steps: [] });
    expect((await runsOfFunction("flow-rate-limited", otherUser, 1))[0]!.status).toBe("Completed");
  });
});

describe("throttle", () => {
  it("delays starts beyond limit + burst, spaced period / limit apart, and drops none", async () => {
    const group = uniqueKey("group");
    const ids = await sendEvents([0, 1, 2, 3, 4].map((n) => ({ name: "test/flow.throttled", data: { group, n } })));
    const runs = await eventually(async () => {
      const found = (await Promise.all(ids.map((id) => runsOf(id)))).flat();
      return found.length === 5 ? found : undefined;
    });
    // Each run waits for its start on its object's alarm: read the start times there, no waiting.
    const startTimes = await Promise.all(
      runs.map(async (run) => {
        const stub = env.RUNS.get(env.RUNS.idFromName(run.run_id));
        return runInDurableObject(stub, async (_, state) => ({ status: run.status, alarm: await state.storage.getAlarm() }));
      }),
    );
    const queued = startTimes.filter((entry) => entry.status === "Queued").map((entry) => entry.alarm!).sort();
    // limit 2 + burst 1 start at once; the other two are Queued 5 s apart (10 s / 2).
    expect(startTimes.filter((entry) => entry.status !== "Queued")).toHaveLength(3);
    expect(queued).toHaveLength(2);
    expect(queued[1]! - queued[0]!).toBe(5000);
  });

  it("paces starts by GCRA in the coordinator (fake time)", async () => {
    const stub = flowObject(env, "flow-throttled", "throttle", uniqueKey("fake"));
    const t0 = Date.UTC(2026, 0, 1);
    const ask = (n: number, now: number) => stub.admit({ kind: "throttle", runId: `r${n}`, limit: 1, period: 60_000, burst: 2 }, now);
    const answers = [await ask(1, t0), await ask(2, t0), await ask(3, t0), await ask(4, t0 + 1000), await ask(5, t0 + 200_000)];
    expect(answers.map((answer) => (answer.start ? answer.at - t0 : null))).toEqual([0, 0, 60_000, 120_000, 200_000]);
    // The same run asked again gets the same answer (a redelivered event).
    expect(await ask(3, t0 + 5000)).toEqual(answers[2]);
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
    const batches = runs.map((run) => (run.output as { ns: number[] }).ns).sort((a, b) => a[0]! - b[0]!);
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    for (const run of runs) expect((run.output as { first: number; ns: number[] }).first).toBe((run.output as { ns: number[] }).ns[0]);
  });
});

describe("flow-control config", () => {
  it("lists a function's flow control in GET /v1/functions", async () => {
    const body = (await (await request("/v1/functions")).json()) as { data: { id: string; config: Record<string, unknown> }[] };
    expect(body.data.find((fn) => fn.id === "flow-throttled")?.config).toMatchObject({ throttle: { limit: 2, period: 10_000, burst: 1 } });
  });
});
