// The run engine's guarantees under interleavings and crashes (issue 9): each test is a scenario
// that broke a guarantee of the first engine.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FIRST_INVOCATION_WAIT_MS } from "../worker/runs/runStart.ts";
import { WATCHDOG_MS } from "../worker/runs/invocation.ts";
import type { RunObject, RunWithSteps } from "../worker/runs/RunObject.ts";
import { runIdFor } from "../worker/platform/runId.ts";
import { getEvent } from "../worker/db/events.ts";
import type { Env } from "../worker/platform/env.ts";
import { derivedRunId, effectCount, eventually, finishedRuns, getRun, request, runIdOf, runsOf, runStub, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";
import { alarmOf, DAY, endInIndex, tablesOf } from "./indexRows.ts";



/**
 * Wakes a run whose object keeps dying until it has failed: each wake is what production gives it,
 * fired now instead of later: a re-arm (status()) and the alarm (its watchdog).
 */
async function wakeUntilFailed(runId: string): Promise<RunJson> {
  return eventually(async () => {
    await runStub(runId).status().catch(() => null);
    await runDurableObjectAlarm(runStub(runId)).catch(() => false);
    const found = await getRun(runId);
    return found.status === "Failed" ? found : undefined;
  });
}

describe("an invocation and its step bodies", () => {
  it("does not end, and no retry starts, while a step body is still running", async () => {
    const key = uniqueKey("charge");
    const [eventId] = await sendEvents({ name: "test/charge-while-rejecting", data: { key } });
    const run = (await finishedRuns(eventId!)).get("charge-while-rejecting")!;
    expect(run.status).toBe("Failed");
    expect(run.error?.message).toBe("the order is invalid");
    expect(await effectCount(`${key}:charge`)).toBe(1);
    expect((await getRun(run.run_id)).steps?.map((s) => [s.name, s.status])).toEqual([["charge", "Completed"]]);
  });

  it("takes the same branch of a Promise.race on replay as on the first pass", async () => {
    const [eventId] = await sendEvents({ name: "test/race-then-sleep", data: {} });
    const run = (await finishedRuns(eventId!)).get("race-then-sleep")!;
    expect(run).toMatchObject({ status: "Completed", output: "work+fast" });
  });
});

describe("retry times", () => {
  it("keeps a RetryAfterError's time when a watchdog or any other wake comes first", async () => {
    const key = uniqueKey("retry-later");
    const [eventId] = await sendEvents({ name: "test/long-then-retry-later", data: { key } });
    const runId = await runIdOf(eventId!);
    // The watchdog fires while the first invocation is still running its slow step.
    await runDurableObjectAlarm(runStub(runId));
    await eventually(async () => ((await effectCount(`${key}:throws`)) === 1 ? true : undefined));
    const alarm = await eventually(async () => {
      const at = await runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm());
      return at !== null && at > Date.now() + 50 * 60_000 ? at : undefined;
    });
    expect(alarm).toBeLessThan(Date.now() + 61 * 60_000);
    // Any wake before the retry time changes nothing.
    await runDurableObjectAlarm(runStub(runId));
    expect(await effectCount(`${key}:throws`)).toBe(1);
    expect((await getRun(runId)).status).toBe("Running");
  });

  it("counts attempts per unit of code: a call outside steps that fails once after each step does not use up retries: 1", async () => {
    const key = uniqueKey("flaky");
    const [eventId] = await sendEvents({ name: "test/flaky-between-steps", data: { key } });
    const run = (await finishedRuns(eventId!)).get("flaky-between-steps")!;
    expect(run).toMatchObject({ status: "Completed", output: "done" });
  });
});

describe("sending events from steps", () => {
  it("answers { ids: [] } for step.sendEvent(id, [])", async () => {
    const [eventId] = await sendEvents({ name: "test/sends-nothing", data: {} });
    expect((await finishedRuns(eventId!)).get("sends-nothing")).toMatchObject({ status: "Completed", output: { ids: [] } });
  });

  it("refuses an event name reserved for the engine, for good, and sends nothing", async () => {
    const [eventId] = await sendEvents({ name: "test/forges-failure", data: {} });
    const run = (await finishedRuns(eventId!)).get("forges-failure")!;
    expect(run.status).toBe("Failed");
    expect(run.error?.message).toMatch(/inngest\//);
    expect((await getRun(run.run_id)).steps?.[0]).toMatchObject({ name: "forge", status: "Failed", attempts: 1 });
  });
});

describe("a step that kills the runtime", () => {
  it("counts the attempt as failed on the next wake instead of running it forever", async () => {
    const key = uniqueKey("die");
    const [eventId] = await sendEvents({ name: "test/dies-in-step", data: { key } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await effectCount(`${key}:die`)) === 1 ? true : undefined));
    // The object died mid-step; its watchdog alarm wakes it.
    const run = await wakeUntilFailed(runId);
    expect(run.error).toMatchObject({ name: "StepError" });
    expect(run.error?.message).toMatch(/the runtime died while running step "die"/);
    expect(run.steps?.[0]).toMatchObject({ name: "die", status: "Failed", attempts: 1 });
    expect(await effectCount(`${key}:die`)).toBe(1);
  });
});

describe("a step that kills the runtime at once", () => {
  it("keeps the run when its first step kills the object in the turn its invocation began", async () => {
    const [eventId] = await sendEvents({ name: "test/dies-at-once", data: {} });
    const runId = await runIdOf(eventId!);
    const run = await wakeUntilFailed(runId);
    expect(run.error?.message).toMatch(/the runtime died while running step "die"/);
  });
});

describe("a step that kills the runtime in an invocation its alarm woke", () => {
  it("is found dead by that alarm, which the runtime runs again (no helper wakes it)", async () => {
    const key = uniqueKey("die-after-sleep");
    const [eventId] = await sendEvents({ name: "test/dies-after-sleep", data: { key } });
    const runId = await runIdOf(eventId!);
    // Only the runtime's own alarm: after the sleep it wakes the run, and after the death it fires again.
    const run = await eventually(async () => {
      // A read that reaches the object as its step kills it fails (500): asked again, as endedRun does.
      const response = await request(`/v1/runs/${runId}`);
      const found = response.status === 200 ? ((await response.json()) as { data: RunJson }).data : undefined;
      return found?.status === "Failed" ? found : undefined;
    }, 60_000, "the run to fail after its step killed the runtime");
    expect(run.error?.message).toMatch(/the runtime died while running step "die"/);
    expect(run.steps?.find((step) => step.name === "die")).toMatchObject({ status: "Failed", attempts: 1 });
    expect(await effectCount(`${key}:die`)).toBe(1);
  });
});

describe("code outside steps that kills the runtime", () => {
  it("fails the run after as many deaths in a row as its retries allow, instead of looping", async () => {
    const key = uniqueKey("die-outside");
    const [eventId] = await sendEvents({ name: "test/dies-outside-steps", data: { key } });
    const runId = await runIdOf(eventId!);
    // Each death is found by the next wake.
    const run = await wakeUntilFailed(runId);
    expect(run.error).toMatchObject({ name: "RuntimeDiedError" });
    // The first invocation, and the recovery that found no step to blame (retries: 0).
    expect(await effectCount(`${key}:handler`)).toBe(2);
  });
});

/** A run's start as an event's dispatch makes it (its caller starts it again until a start answers), of a new run of `functionId`. */
function dispatchedStart(functionId: string, data: Record<string, unknown> = {}) {
  const now = Date.now();
  const event = { id: uniqueKey("event"), name: `test/${functionId}`, data, ts: now };
  const runId = runIdFor(functionId, event.id, now);
  return { runId, init: { runId, functionId, events: [event], startAt: now, repeatedUntilAnswered: true } };
}

/** What a test reaches inside a run's object to interleave a start with a cancel. */
interface StartingObject {
  execute(isFirst: boolean): Promise<void>;
  delivery: { deliverEnd(run: { status: string }): Promise<void> };
  start: RunObject["start"];
  cancel: RunObject["cancel"];
}

/** Starts the run inside its object, counting the alarms it sets meanwhile (each is a row written). */
async function startCountingAlarms(runId: string, init: ReturnType<typeof dispatchedStart>["init"]) {
  return runInDurableObject(runStub(runId), async (object, state) => {
    const alarms: number[] = [];
    const setAlarm = state.storage.setAlarm.bind(state.storage);
    state.storage.setAlarm = (at: number | Date) => {
      alarms.push(Number(at));
      return setAlarm(at);
    };
    const startedAt = Date.now();
    const status = await (object as unknown as RunObject).start(init);
    return { status, startedAt, alarms };
  });
}

describe("a start its dispatch repeats until it answers", () => {
  it("answers with the end of a run that ends at once, and arms no watchdog", async () => {
    const { runId, init } = dispatchedStart("fanout-a", { key: uniqueKey("no-watchdog") });
    const { status, alarms } = await startCountingAlarms(runId, init);
    expect(status).toBe("Completed");
    // No watchdog, and no alarm for its end: delivered before the start answered (retention is the tick's).
    expect(alarms).toEqual([]);
    expect((await getRun(runId)).status).toBe("Completed");
  });

  it("arms the watchdog once the first invocation outlasts its wait, and answers then", async () => {
    const key = uniqueKey("outlasts");
    const { runId, init } = dispatchedStart("long-then-retry-later", { key });
    const { status, alarms, startedAt } = await startCountingAlarms(runId, init);
    expect(status).toBe("Running");
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toBeGreaterThanOrEqual(startedAt + FIRST_INVOCATION_WAIT_MS + WATCHDOG_MS);
    // The invocation goes on and records its retry an hour later, replacing the watchdog.
    await eventually(async () => {
      const at = await runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm());
      return at !== null && at > Date.now() + 50 * 60_000 ? true : undefined;
    });
    await runStub(runId).cancel();
  });

  it("arms the watchdog a repeated start finds missing after the object died in the first invocation", async () => {
    const key = uniqueKey("repeated");
    const [eventId] = await sendEvents({ name: "test/dies-in-step", data: { key } });
    const runId = await derivedRunId("dies-in-step", eventId!);
    // The step kills the object before its start answers; the dispatch hands the event to the queue,
    // whose start finds the run with no alarm and arms the watchdog the first start did not.
    const { alarm, firstStart } = await eventually(() =>
      runInDurableObject(runStub(runId), async (_object, state) => {
        const starts = state.storage.sql.exec<{ starts: string }>("SELECT starts FROM run").toArray()[0]?.starts;
        const at = await state.storage.getAlarm();
        return starts && at !== null ? { alarm: at, firstStart: (JSON.parse(starts) as { at: number }[])[0]!.at } : undefined;
      }).catch(() => undefined), // asked while the kill resets it
    );
    expect(alarm).toBe(firstStart + WATCHDOG_MS);
    expect(await effectCount(`${key}:die`)).toBe(1);
    const run = await wakeUntilFailed(runId);
    expect(run.error?.message).toMatch(/the runtime died while running step "die"/);
    expect(await effectCount(`${key}:die`)).toBe(1);
  });

  it("leaves an alarm for the end of a cancel that came while it waited, should the runtime die before that end is delivered", async () => {
    const { runId, init } = dispatchedStart("fanout-a", { key: uniqueKey("cancel-while-waiting") });
    const status = await runInDurableObject(runStub(runId), async (object) => {
      const instance = object as unknown as StartingObject;
      // The cancel's write of its end to the runs index is still under way when the first invocation settles.
      const deliverEnd = instance.delivery.deliverEnd.bind(instance.delivery);
      instance.delivery.deliverEnd = async (run) => (run.status === "Cancelled" ? new Promise<void>(() => {}) : deliverEnd(run));
      // The cancel comes just as the first invocation has begun.
      const execute = instance.execute.bind(instance);
      instance.execute = (isFirst) => {
        queueMicrotask(() => void instance.cancel());
        return execute(isFirst);
      };
      return instance.start(init);
    });
    // The start answered: its caller marks the event dispatched and never starts the run again.
    expect(status).toBe("Cancelled");
    // The runtime dies now, the end's write in flight: something must still deliver the end.
    await runInDurableObject(runStub(runId), (_object, state) => state.abort("killed while the end's write was in flight")).catch(() => undefined);
    expect(await alarmOf(runId)).not.toBeNull();
    expect(await runDurableObjectAlarm(runStub(runId))).toBe(true);
    expect(await endInIndex(runId)).toMatchObject({ status: "Cancelled" });
  });
});

describe("a start its dispatch repeats, when the repeat meets the function paused", () => {
  const post = (path: string) => request(path, { method: "POST" });

  it("arms the watchdog of the run that died in its first invocation when the resume starts it", async () => {
    const key = uniqueKey("died-then-paused");
    expect((await post("/v1/functions/dies-in-step/pause")).status).toBe(200);
    try {
      // The dispatch's repeat found the function paused and held the event for its resume...
      const [eventId] = await sendEvents({ name: "test/dies-in-step", data: { key } });
      await eventually(async () => ((await pausedEventCount(eventId!)) === 1 ? true : undefined));
      // ...after its first start, which read the pause before it came, died in the run's first invocation, armed with no watchdog.
      const found = (await getEvent(env as unknown as Env, eventId!))!;
      const runId = await derivedRunId("dies-in-step", eventId!);
      const init = { runId, functionId: "dies-in-step", events: [found.event], startAt: found.receivedAt, repeatedUntilAnswered: true };
      await runStub(runId)
        .start(init)
        .catch(() => undefined);
      expect(await effectCount(`${key}:die`)).toBe(1);
      expect(await alarmOf(runId)).toBeNull();
      // The resume's start is the repeat: it arms the watchdog, or nothing ever wakes the run.
      expect((await post("/v1/functions/dies-in-step/resume")).status).toBe(200);
      await eventually(async () => ((await pausedEventCount(eventId!)) === 0 ? true : undefined));
      expect(await alarmOf(runId)).not.toBeNull();
      const run = await wakeUntilFailed(runId);
      expect(run.error?.message).toMatch(/the runtime died while running step "die"/);
      expect(await effectCount(`${key}:die`)).toBe(1);
    } finally {
      await post("/v1/functions/dies-in-step/resume");
    }
  });

  it("does not skip, on a resume that skips, the run that died in its first invocation: asked, it arms its watchdog", async () => {
    const key = uniqueKey("died-then-skipped");
    expect((await request("/v1/functions/dies-in-step/pause", { method: "POST", body: JSON.stringify({ skip: true }), headers: { "content-type": "application/json" } })).status).toBe(200);
    try {
      const [eventId] = await sendEvents({ name: "test/dies-in-step", data: { key } });
      await eventually(async () => ((await pausedEventCount(eventId!)) === 1 ? true : undefined));
      // As above: its first start died in the run's first invocation, with no watchdog armed.
      const found = (await getEvent(env as unknown as Env, eventId!))!;
      const runId = await derivedRunId("dies-in-step", eventId!);
      await runStub(runId)
        .start({ runId, functionId: "dies-in-step", events: [found.event], startAt: found.receivedAt, repeatedUntilAnswered: true })
        .catch(() => undefined);
      expect(await alarmOf(runId)).toBeNull();
      expect((await post("/v1/functions/dies-in-step/resume")).status).toBe(200);
      await eventually(async () => ((await pausedEventCount(eventId!)) === 0 ? true : undefined));
      // The run began before the pause: it goes on, recorded by its own object, never as Skipped.
      const run = await wakeUntilFailed(runId);
      expect(run.error?.message).toMatch(/the runtime died while running step "die"/);
      expect((await runsOf(eventId!)).map((listed) => listed.status)).toEqual(["Failed"]);
    } finally {
      await post("/v1/functions/dies-in-step/resume");
    }
  });
});

/** How many of a paused function's held events are `eventId`. */
async function pausedEventCount(eventId: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM paused_events WHERE event_id = ?1").bind(eventId).first<{ n: number }>())?.n ?? 0;
}

describe("the tick and the alarm", () => {
  it("re-arms the alarm of a run that is not over and has none (the runtime gave up retrying it)", async () => {
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key: uniqueKey("rearm") } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((s) => s.name === "long-wait") ? true : undefined));
    await runInDurableObject(runStub(runId), (_object, state) => state.storage.deleteAlarm());
    // What a flow coordinator asks a run (the tick asks inspect() and reports it stuck instead: test/stuck.test.ts).
    expect(await runStub(runId).status()).toMatchObject({ status: "Running" });
    // The re-armed alarm wakes the run early; it keeps sleeping until its stored wake time.
    await runDurableObjectAlarm(runStub(runId));
    await eventually(async () => {
      const at = await runInDurableObject(runStub(runId), (_object, state) => state.storage.getAlarm());
      return at !== null && at > Date.now() + 50 * 60_000 ? true : undefined;
    });
    await runStub(runId).cancel();
  });

  it("keeps its next timer when it comes due while the invocation that set it is still ending", async () => {
    const [eventId] = await sendEvents({ name: "test/cancellable", data: { key: uniqueKey("due-while-ending") } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await getRun(runId)).steps?.some((s) => s.name === "long-wait") ? true : undefined));
    const alarmAfter = await runInDurableObject(runStub(runId), async (object, state) => {
      // As a step retried after 5 ms: the invocation has set its alarm and not yet ended when the alarm
      // fires, and the runtime deletes an alarm as it fires it.
      const instance = object as unknown as { executing: Promise<void> | null; alarm(): Promise<void> };
      let end!: () => void;
      instance.executing = new Promise<void>((resolve) => (end = resolve));
      await state.storage.deleteAlarm();
      const fired = instance.alarm();
      end();
      instance.executing = null;
      await fired;
      return state.storage.getAlarm();
    });
    // The run's sleep still has its alarm: nothing else would ever wake it.
    expect(alarmAfter).not.toBeNull();
    await runStub(runId).cancel();
  });

  it("sets no alarm for a finished run once its end reached the runs index: one left pending finds nothing to do", async () => {
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key: uniqueKey("no-retention-alarm") } });
    const run = (await finishedRuns(eventId!, 2)).get("fanout-a")!;
    await endInIndex(run.run_id);
    // No alarm at the end of the retention period (the tick deletes the object with its row): an alarm
    // still pending (the run's watchdog, say) goes off and sets none after it.
    const pending = await alarmOf(run.run_id);
    expect(pending === null || pending < Date.now() + 24 * 3600_000, `an alarm at ${pending}`).toBe(true);
    await eventually(async () => {
      await runDurableObjectAlarm(runStub(run.run_id));
      return (await alarmOf(run.run_id)) === null ? true : undefined;
    });
    expect(((await runStub(run.run_id).getRun()) as unknown as RunWithSteps).run.status).toBe("Completed");
  });

  it("deletes the records of an object of an earlier release when the retention alarm it holds goes off", async () => {
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key: uniqueKey("retention-alarm") } });
    const run = (await finishedRuns(eventId!, 2)).get("fanout-a")!;
    await endInIndex(run.run_id);
    // An earlier release set the alarm at the end of the retention period; thirty-one days later (moved in
    // the object's record rather than waited for) it goes off.
    await runInDurableObject(runStub(run.run_id), async (object, state) => {
      await state.storage.setAlarm(Date.now() + 30 * DAY);
      state.storage.sql.exec("UPDATE run SET ended_at = ?", Date.now() - 31 * DAY);
      // The object reads its record once: make it read the changed one.
      (object as unknown as { store: { clear(): void } }).store.clear();
    });
    expect(await runDurableObjectAlarm(runStub(run.run_id))).toBe(true);
    expect(await runStub(run.run_id).getRun()).toBeNull();
    expect(await alarmOf(run.run_id)).toBeNull();
    // Its storage is gone, tables and all.
    expect(await tablesOf(run.run_id)).toEqual([]);
  });
});

describe("listings", () => {
  it("lists an event's runs from their records alone, never loading their steps", async () => {
    const [eventId] = await sendEvents({ name: "test/big-output", data: { key: uniqueKey("listing") } });
    const run = (await finishedRuns(eventId!)).get("big-output")!;
    type Spied = { store: { steps(): unknown }; stepLoads?: number };
    await runInDurableObject(runStub(run.run_id), (object) => {
      const spied = object as unknown as Spied;
      const load = spied.store.steps.bind(spied.store);
      spied.stepLoads = 0;
      spied.store.steps = () => {
        spied.stepLoads!++;
        return load();
      };
    });
    const listed = await runsOf(eventId!);
    expect(listed[0]).toMatchObject({ run_id: run.run_id, status: "Completed" });
    expect(listed[0]).not.toHaveProperty("steps");
    expect(await runInDurableObject(runStub(run.run_id), (object) => (object as unknown as Spied).stepLoads)).toBe(0);
    // The run's own page does load them.
    expect((await getRun(run.run_id)).steps).toHaveLength(2);
    expect(await runInDurableObject(runStub(run.run_id), (object) => (object as unknown as Spied).stepLoads)).toBe(1);
  });
});
