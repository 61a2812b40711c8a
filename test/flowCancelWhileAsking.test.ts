import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { flowObject } from "../worker/flow/admission.ts";
import { DELIVERY_RETRY_MS } from "../worker/runs/alarm.ts";
import { derivedRunId, eventually, getRun, request, runStub, sendEvents, uniqueKey } from "./helpers.ts";
import { alarmOf } from "./indexRows.ts";

// A run cancelled while its invocation asks its coordinator for a slot or a start: the cancel's end
// gives its place back (the outbox's release-flow), and the ask may reach the coordinator after that.
// Under load this happens by chance; here the run's own ask is made to wait for the cancel, every time.

type Coordinator = ReturnType<typeof flowObject>;

/** The run ids in a coordinator's table. */
function rowsOf(coordinator: Coordinator, table: "waiting" | "leases" | "decisions"): Promise<string[]> {
  return runInDurableObject(coordinator, (_, state) => state.storage.sql.exec<{ run_id: string }>(`SELECT run_id FROM ${table} ORDER BY rowid`).toArray().map((row) => row.run_id));
}

/** Waits until `runIds` are all in the coordinator's `table`. */
function inTable(coordinator: Coordinator, table: "waiting" | "leases" | "decisions", runIds: string[], what: string): Promise<true> {
  return eventually(async () => {
    const rows = await rowsOf(coordinator, table);
    return runIds.every((id) => rows.includes(id)) ? true : undefined;
  }, 30_000, what);
}

/**
 * Runs the queued run's alarm (its next ask for a place) with the ask held back until the run is
 * cancelled: the ask reaches the coordinator after the cancel's end gave the run's place back.
 * Answers the coordinator's queue (`coordinator` makes a stub of it) as it stood when the ask went out.
 */
async function askAfterCancel(runId: string, ask: "acquire" | "acquireStart", coordinator: () => Coordinator): Promise<string[]> {
  let queueAtAsk: string[] | undefined;
  await runInDurableObject(runStub(runId), (instance) => {
    const slots = (instance as unknown as { slots: Record<typeof ask, (...args: unknown[]) => Promise<unknown>> }).slots;
    const realAsk = slots[ask].bind(slots);
    slots[ask] = async (...args: unknown[]) => {
      slots[ask] = realAsk;
      // cancel() ends the run and delivers its end's outbox, release-flow with it, before it answers.
      await instance.cancel();
      // A stub of its own: one the test made cannot be used from inside the run's object.
      queueAtAsk = await rowsOf(coordinator(), "waiting");
      return realAsk(...args);
    };
  });
  // The alarm handler runs the invocation to its end (the run's own alarm, should it fire first, runs the same one).
  await runDurableObjectAlarm(runStub(runId));
  const invoking = () => runInDurableObject(runStub(runId), (instance) => (instance as unknown as { executing: Promise<void> | null }).executing !== null);
  return eventually(async () => (queueAtAsk !== undefined && !(await invoking()) ? queueAtAsk : undefined), 30_000, "the invocation that asked after the cancel to end");
}

/**
 * Queues runs B and C (`start`ed) behind the runs holding the coordinator's places, then cancels B as
 * its next ask for a place goes out (askAfterCancel). Checks the interleaving happened: the cancel's
 * give-back had taken B out of the queue before its ask came. Answers B and C.
 */
async function cancelWhileAsking(start: () => Promise<string>, ask: "acquire" | "acquireStart", coordinatorOf: () => Coordinator): Promise<{ b: string; c: string }> {
  const coordinator = coordinatorOf();
  const b = await start();
  await inTable(coordinator, "waiting", [b], "B waiting for its place");
  const c = await start();
  await inTable(coordinator, "waiting", [b, c], "B and C waiting for their places");
  expect(await askAfterCancel(b, ask, coordinatorOf)).toEqual([c]);
  expect((await getRun(b)).status).toBe("Cancelled");
  return { b, c };
}

/** Sends one event and answers the id of the run `functionId` starts for it. */
async function startRun(functionId: string, name: string, data: Record<string, unknown>): Promise<string> {
  const [eventId] = await sendEvents({ name, data });
  return derivedRunId(functionId, eventId!);
}

describe("a run cancelled while it asks for its place", () => {
  it("concurrency: holds no slot and no place in the queue, and the run behind it gets the slot", async () => {
    const group = uniqueKey("cancel-asking");
    const gate = `${group}:gate`;
    const limitOf = () => flowObject(env, "flow-one-at-a-time", "concurrency:0", group);
    const limit = limitOf();
    let n = 0;
    const start = (extra: Record<string, unknown> = {}) => startRun("flow-one-at-a-time", "test/flow.one-at-a-time", { group, n: n++, ...extra });
    // A holds the one slot behind its gate; B queues, then C behind it; B is cancelled as it asks again.
    const a = await start({ gate });
    await inTable(limit, "leases", [a], "A holding the slot");
    const { b, c } = await cancelWhileAsking(start, "acquire", limitOf);
    // (a) The ask that came late took nothing B keeps.
    expect(await rowsOf(limit, "waiting")).toEqual([c]);
    expect(await rowsOf(limit, "leases")).toEqual([a]);
    // (c) B's alarm is its end's delivery retry at most, not the queue's recheck a lease later.
    const alarm = await alarmOf(b);
    if (alarm !== null) expect(alarm).toBeLessThanOrEqual(Date.now() + DELIVERY_RETRY_MS);
    // (b) A's gate opens: A ends, and the slot goes to C.
    await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(gate).run();
    const ended = await eventually(async () => {
      const run = await getRun(c);
      return run.status === "Completed" ? run : undefined;
    }, 30_000, "C completed");
    expect(ended.output).toBe(2);
    expect((await getRun(a)).status).toBe("Completed");
    expect((await getRun(b)).status).toBe("Cancelled");
    expect(await rowsOf(limit, "waiting")).toEqual([]);
  }, 60_000);

  it("throttle: keeps no place in the queue and no start, and the run behind it is next", async () => {
    const group = uniqueKey("cancel-asking-start");
    const throttleOf = () => flowObject(env, "flow-throttled-slowly", "throttle", group);
    const throttle = throttleOf();
    let n = 0;
    const start = () => startRun("flow-throttled-slowly", "test/flow.throttled-slowly", { group, n: n++ });
    // limit 2 + burst 1 start at once; the next start is minutes away, so B and C wait for it.
    const first = await Promise.all([start(), start(), start()]);
    await inTable(throttle, "decisions", first, "the first three granted their start");
    const { b, c } = await cancelWhileAsking(start, "acquireStart", throttleOf);
    // (a) B is out of the queue and was granted no start: C is first in line.
    expect(await rowsOf(throttle, "waiting")).toEqual([c]);
    expect(await rowsOf(throttle, "decisions")).not.toContain(b);
    // (c) Its end's delivery retry at most, not the recheck at its estimated turn, minutes away.
    const alarm = await alarmOf(b);
    if (alarm !== null) expect(alarm).toBeLessThanOrEqual(Date.now() + DELIVERY_RETRY_MS);
    expect((await request(`/v1/runs/${c}`, { method: "DELETE" })).status).toBe(200);
  }, 60_000);
});
