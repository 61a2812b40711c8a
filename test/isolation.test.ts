import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { engineEventId } from "../sdk/event.ts";
import { RunStore } from "../worker/runs/RunStore.ts";
import { dispatched, effectCount, finishedRuns, request, runsOf, sendEvents, uniqueKey } from "./helpers.ts";

describe("isolation inside a run", () => {
  const cases: [string, RegExp][] = [
    ["non-error", /"code":42/],
    ["string", /just a string/],
    ["circular", /not JSON-serializable/],
    ["huge", /limit is 4 MiB/],
    ["hang", /did not finish within 300 ms, the function's stepTimeout/],
  ];

  it("fails only the run that misbehaves, with a message naming the cause, while others go on", async () => {
    const key = uniqueKey("ok");
    const ids = await sendEvents([
      ...cases.map(([mode]) => ({ name: "test/isolated", data: { mode } })),
      { name: "test/isolated", data: { mode: "ok", key } },
    ]);
    for (const [i, [mode, message]] of cases.entries()) {
      const run = (await finishedRuns(ids[i]!)).get("isolated")!;
      expect(run.status, mode).toBe("Failed");
      expect(run.error?.name, mode).toBe("StepError");
      expect(run.error?.message, mode).toMatch(message);
    }
    const ok = (await finishedRuns(ids[cases.length]!)).get("isolated")!;
    expect(ok).toMatchObject({ status: "Completed", output: `ok:${key}` });
  });

  it("treats a trigger expression that fails on an event as no match, and matches the others", async () => {
    const [missing, wrongType, big] = await sendEvents([
      { name: "test/expression", data: {} },
      { name: "test/expression", data: { order: { total: "lots" } } },
      { name: "test/expression", data: { order: { total: 150 } } },
    ]);
    expect((await finishedRuns(big!)).get("expression-fails")).toMatchObject({ status: "Completed", output: "big order 150" });
    await dispatched(missing!);
    await dispatched(wrongType!);
    expect(await runsOf(missing!)).toEqual([]);
    expect(await runsOf(wrongType!)).toEqual([]);
  });

  it("stores a step output larger than one SQLite value, and memoizes it across a sleep", async () => {
    const key = uniqueKey("big");
    const [eventId] = await sendEvents({ name: "test/big-output", data: { key } });
    const run = (await finishedRuns(eventId!)).get("big-output")!;
    expect(run).toMatchObject({ status: "Completed", output: { length: 3 * 1024 * 1024 / 2 - 8, intact: true } });
    expect(await effectCount(`${key}:big`)).toBe(1);
    // Read back from SQLite, not from the object's memory.
    const stub = env.RUNS.get(env.RUNS.idFromName(run.run_id));
    const stored = await runInDurableObject(stub, (_instance, state) => [...new RunStore(state.storage.sql).steps().values()].find((s) => s.name === "big"));
    expect((stored?.output as string).length).toBe(3 * 1024 * 1024 / 2 - 8);
  });

  it("fails a run whose handler returns more than 4 MiB, naming the limit", async () => {
    const [eventId] = await sendEvents({ name: "test/big-output", data: { key: uniqueKey("big"), returnTooMuch: true } });
    const run = (await finishedRuns(eventId!)).get("big-output")!;
    expect(run.status).toBe("Failed");
    expect(run.error?.message).toMatch(/handler output is 5\.0 MiB; the limit is 4 MiB/);
  });

  it("sends no failure event for a failed run that a failure event started", async () => {
    const [eventId] = await sendEvents({ name: "test/isolated", data: { mode: "string" } });
    const failed = (await finishedRuns(eventId!)).get("isolated")!;
    const watcher = (await finishedRuns(engineEventId(failed.run_id, "failed"))).get("failure-watcher")!;
    expect(watcher.status).toBe("Failed");
    expect((await request(`/v1/events/${engineEventId(watcher.run_id, "failed")}`)).status).toBe(404);
  });
});
