import { describe, expect, it, vi } from "vitest";
import { dispatched, effectCount, finishedRuns, getRun, runsOf, sendEvents, uniqueKey } from "./helpers.ts";

describe("steps", () => {
  it("runs each step's side effect exactly once across a sleep and retries", async () => {
    const key = uniqueKey("counted");
    const [eventId] = await sendEvents({ name: "test/counted", data: { key, failTimes: 2 } });
    const run = (await finishedRuns(eventId!)).get("counted")!;
    expect(run.status).toBe("Completed");
    expect(run.output).toBe("abc");
    expect(await effectCount(`${key}:a`)).toBe(1);
    expect(await effectCount(`${key}:b-attempt`)).toBe(3);
    expect(await effectCount(`${key}:b`)).toBe(1);
    expect(await effectCount(`${key}:c`)).toBe(1);
    const { steps } = await getRun(run.run_id);
    expect(steps!.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ["a", "Completed", 1],
      ["nap", "Completed", 1],
      ["b", "Completed", 3],
      ["c", "Completed", 1],
    ]);
    // Every failed attempt is kept, with its own error and times.
    const b = steps!.find((s) => s.name === "b") as unknown as { failed_attempts: { error: { message: string }; started_at: string; ended_at: string }[] };
    expect(b.failed_attempts.map((attempt) => attempt.error.message)).toEqual(["b fails on attempt 0", "b fails on attempt 1"]);
    expect(b.failed_attempts.every((attempt) => attempt.started_at <= attempt.ended_at)).toBe(true);
  });

  it("runs parallel steps and gives repeated ids :1, :2 in call order", async () => {
    const [eventId] = await sendEvents({ name: "test/parallel" });
    const run = (await finishedRuns(eventId!)).get("parallel")!;
    expect(run.output).toEqual([1, 4, 9]);
    const { steps } = await getRun(run.run_id);
    const byName = new Map(steps!.map((s) => [s.name, s]));
    expect(byName.get("square")?.output).toBe(1);
    expect(byName.get("square:1")?.output).toBe(4);
    expect(byName.get("square:2")?.output).toBe(9);
    expect(byName.get("short")?.status).toBe("Completed");
    expect(byName.get("long")?.status).toBe("Completed");
  });

  it("sends events from a step through the ingest path and returns their ids", async () => {
    const key = uniqueKey("chain");
    const [eventId] = await sendEvents({ name: "test/chain.start", data: { key } });
    const start = (await finishedRuns(eventId!)).get("chain-start")!;
    expect(start.status).toBe("Completed");
    const { ids } = start.output as { ids: string[] };
    expect(ids).toHaveLength(1);
    const next = (await finishedRuns(ids[0]!)).get("chain-next")!;
    expect(next).toMatchObject({ status: "Completed", output: { reached: key } });
  });

  it("throws a StepError into the handler when a step fails for good, and the handler can catch it", async () => {
    const key = uniqueKey("recovers");
    const [eventId] = await sendEvents({ name: "test/recovers", data: { key } });
    const run = (await finishedRuns(eventId!)).get("recovers")!;
    expect(run).toMatchObject({ status: "Completed", output: "recovered from doomed: no way" });
    expect(await effectCount(`${key}:doomed`)).toBe(1);
  });

  it("retries the handler after an error outside steps without re-running memoized steps", async () => {
    const key = uniqueKey("handler");
    const [eventId] = await sendEvents({ name: "test/retries-handler", data: { key } });
    const run = (await finishedRuns(eventId!)).get("retries-handler")!;
    expect(run).toMatchObject({ status: "Completed", output: { once: "stored", attempt: 1 } });
    expect(await effectCount(`${key}:once`)).toBe(1);
  });

  it("fans one event out to every function it triggers", async () => {
    const key = uniqueKey("fanout");
    const [eventId] = await sendEvents({ name: "test/fanout", data: { key } });
    const runs = await finishedRuns(eventId!, 2);
    expect(runs.get("fanout-a")).toMatchObject({ status: "Completed", output: `a:${key}` });
    expect(runs.get("fanout-b")).toMatchObject({ status: "Completed", output: `b:${key}` });
    expect(runs.get("fanout-a")!.run_id).not.toBe(runs.get("fanout-b")!.run_id);
  });

  it("matches wildcard triggers filtered by a CEL expression", async () => {
    const [big, small, other] = await sendEvents([
      { name: "test/wild/order", data: { amount: 150 } },
      { name: "test/wild/order", data: { amount: 50 } },
      { name: "test/wilder", data: { amount: 500 } },
    ]);
    expect((await finishedRuns(big!)).get("wildcard")).toMatchObject({ status: "Completed", output: "test/wild/order" });
    await dispatched(small!);
    await dispatched(other!);
    expect(await runsOf(small!)).toEqual([]);
    expect(await runsOf(other!)).toEqual([]);
  });

  it("gives the handler a logger that writes JSON lines tagged with the run and function", async () => {
    const spy = vi.spyOn(console, "log");
    const key = uniqueKey("logs");
    const [eventId] = await sendEvents({ name: "test/logs", data: { key } });
    const run = (await finishedRuns(eventId!)).get("logs")!;
    const lines = spy.mock.calls.map((args) => String(args[0])).filter((line) => line.includes(key));
    spy.mockRestore();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", message: "hello from a run", key, run_id: run.run_id, function_id: "logs" });
  });
});
