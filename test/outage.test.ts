// D1 and the queue failing for a while (the dev-mode fault switch) while runs fail, send events and
// are cancelled: nothing that leaves a run is lost or doubled, and a run's own status and error are
// final at once (issue 9, items 7 and 8).
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { engineEventId } from "../sdk/event.ts";
import { sendEventId } from "../sdk/step.ts";
import { instrument } from "../worker/platform/bindings.ts";
import type { Env } from "../worker/platform/env.ts";
import { setFaults } from "../worker/platform/faults.ts";
import { pruneExpired } from "../worker/schedule/tick.ts";
import type { RunWithSteps } from "../worker/runs/RunObject.ts";
import { effectCount, eventually, finishedRuns, runIdOf, runsOf, runStub, sendEvents, uniqueKey } from "./helpers.ts";
import { ageIndexRow, DAY, endInIndex, indexRowOf, pruneUntilGone } from "./indexRows.ts";


/** The run's own record, asked of its object (the REST API needs D1, which may be down). */
async function objectRun(runId: string): Promise<RunWithSteps["run"]> {
  return ((await runStub(runId).getRun()) as unknown as RunWithSteps).run;
}


/** Lets the object's delivery retries (every 5 s) happen now, once the outage is over. */
async function deliverNow(runId: string): Promise<void> {
  await runDurableObjectAlarm(runStub(runId));
}

afterEach(() => {
  setFaults({ d1: false, queue: false });
});

describe("an outage of D1 and the queue", () => {
  it("keeps a failed run's real error, and runs its onFailure once when the outage ends", async () => {
    const key = uniqueKey("outage-fail");
    const [eventId] = await sendEvents({ name: "test/fails-after-pause", data: { key } });
    const runId = await runIdOf(eventId!);
    setFaults({ d1: true, queue: true });
    const run = await eventually(async () => {
      const found = await objectRun(runId);
      return found.status === "Failed" ? found : undefined;
    });
    expect(run.error).toMatchObject({ name: "NonRetriableError", message: "broken for good" });
    // Nothing could leave the run: its failure event waits in the outbox.
    await runDurableObjectAlarm(runStub(runId));
    expect(await effectCount(`${key}:onFailure`)).toBe(0);

    setFaults({ d1: false, queue: false });
    await deliverNow(runId);
    const failureEventId = engineEventId(runId, "failed");
    expect((await finishedRuns(failureEventId)).get("fails-after-pause-failure")).toMatchObject({ status: "Completed" });
    expect(await effectCount(`${key}:onFailure`)).toBe(1);
    // Delivering again changes nothing: the event id is a duplicate.
    await deliverNow(runId);
    expect((await objectRun(runId)).error?.message).toBe("broken for good");
    expect(await runsOf(failureEventId)).toHaveLength(1);
    // The runs index learned the end too.
    await eventually(async () => ((await runsOf(eventId!))[0]?.status === "Failed" ? true : undefined));
  });

  it("delivers an event a step sent during the outage once, with its derived id", async () => {
    const key = uniqueKey("outage-send");
    const [eventId] = await sendEvents({ name: "test/sends-after-pause", data: { key } });
    const runId = await runIdOf(eventId!);
    setFaults({ d1: true, queue: true });
    const sentId = sendEventId(runId, "next", 0);
    const run = await eventually(async () => {
      const found = await objectRun(runId);
      return found.status === "Completed" ? found : undefined;
    });
    expect(run.output).toEqual({ ids: [sentId] });

    setFaults({ d1: false, queue: false });
    await deliverNow(runId);
    const next = (await finishedRuns(sentId)).get("chain-next");
    expect(next).toMatchObject({ status: "Completed", output: { reached: key } });
    await deliverNow(runId);
    expect(await runsOf(sentId)).toHaveLength(1);
  });
});

describe("cancel and failure", () => {
  it("keeps whichever ended the run first: a run that failed stays Failed when cancelled while its failure event waits", async () => {
    const key = uniqueKey("fail-then-cancel");
    const [eventId] = await sendEvents({ name: "test/fails-after-pause", data: { key } });
    const runId = await runIdOf(eventId!);
    setFaults({ queue: true });
    await eventually(async () => ((await objectRun(runId)).status === "Failed" ? true : undefined));
    const cancelled = (await runStub(runId).cancel()) as unknown as RunWithSteps;
    expect(cancelled.run.status).toBe("Failed");
    setFaults({ queue: false });
    await deliverNow(runId);
    await eventually(async () => ((await effectCount(`${key}:onFailure`)) === 1 ? true : undefined));
  });

  it("starts no onFailure for a run cancelled before it failed", async () => {
    const key = uniqueKey("cancel-then-fail");
    const [eventId] = await sendEvents({ name: "test/fails-after-pause", data: { key, pauseMs: 600 } });
    const runId = await runIdOf(eventId!);
    const cancelled = (await runStub(runId).cancel()) as unknown as RunWithSteps;
    expect(cancelled.run.status).toBe("Cancelled");
    // The step that was running finishes; its result is discarded and the handler's failure never
    // recorded. An alarm waits for the invocation in progress to end: after it, nothing is running.
    await deliverNow(runId);
    expect((await objectRun(runId)).status).toBe("Cancelled");
    expect(await runsOf(engineEventId(runId, "failed"))).toHaveLength(0);
    expect(await effectCount(`${key}:onFailure`)).toBe(0);
  });
});

describe("retention during a queue outage", () => {
  it("keeps the index row of a run past retention while the queue refuses its id, and prunes it and the run's object once the queue is back", async () => {
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key: uniqueKey("outage-retention") } });
    const run = (await finishedRuns(eventId!, 2)).get("fanout-a")!;
    await endInIndex(run.run_id);
    // Its row 20 days old, pruned as if 20 days from now: past retention, where other tests' rows are not.
    await ageIndexRow(run.run_id, 20 * DAY);
    const now = Date.now() + 20 * DAY;
    // The tick's env, as the Scheduler has it: its Queue fails while the switch is on.
    const tickEnv = instrument(env as unknown as Env);

    setFaults({ queue: true });
    expect((await pruneExpired(tickEnv, now)).runs).toBe(0);
    expect(await indexRowOf(run.run_id)).not.toBeNull();
    expect((await objectRun(run.run_id)).status).toBe("Completed");

    setFaults({ queue: false });
    await pruneUntilGone(run.run_id, now, tickEnv);
    await eventually(async () => ((await runStub(run.run_id).getRun()) === null ? true : undefined), 15_000, "the run's object deleted");
  });
});

