import { describe, expect, it } from "vitest";
import { NonRetriableError } from "./errors/NonRetriableError.ts";
import { MAX_PUBLISH_BYTES, preparePublish } from "./publish.ts";
import { drive, FakeClock, TestRun } from "./testing.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");

describe("preparePublish", () => {
  it("keeps the topic and a JSON copy of the data", () => {
    const data = { at: new Date(T0), missing: undefined, n: 1 };
    expect(preparePublish("progress", data)).toEqual({ topic: "progress", data: { at: "2026-01-01T00:00:00.000Z", n: 1 } });
    expect(preparePublish("done", undefined)).toEqual({ topic: "done", data: null });
  });

  it("refuses data over 64 KiB, a topic that is no name, and data JSON cannot hold, saying which", () => {
    expect(() => preparePublish("big", "x".repeat(MAX_PUBLISH_BYTES))).toThrow(/step\.publish\("big"\) data is 64\.0 KiB; the limit is 64 KiB/);
    expect(() => preparePublish("", 1)).toThrow(/topic must be a string of 1 to 255 characters, got an empty string/);
    expect(() => preparePublish(42, 1)).toThrow(/got number/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => preparePublish("loop", loop)).toThrow(NonRetriableError);
    expect(() => preparePublish("ok", "x".repeat(MAX_PUBLISH_BYTES - 2))).not.toThrow();
  });
});

describe("step.publish", () => {
  it("stores each message once, in order, however often the run replays (a sleep, a retry)", async () => {
    let failures = 0;
    const { outcome, run } = await drive(
      async ({ step }) => {
        await step.publish("progress", { done: 0 });
        await step.run("work", () => 1);
        await step.publish("progress", { done: 1 });
        await step.sleep("nap", "1m");
        await step.publish("progress", { done: 2 });
        await step.run("flaky", () => {
          if (failures++ < 2) throw new Error("not yet");
          return "ok";
        });
        await step.publish("done", "bye");
        return "end";
      },
      { clock: new FakeClock(T0) },
    );
    expect(outcome).toEqual({ type: "completed", output: "end" });
    // Four invocations (the sleep, two retries), each replaying the messages before it.
    expect(run.outcomes).toHaveLength(4);
    expect(run.published.map(({ topic, data }) => [topic, data])).toEqual([
      ["progress", { done: 0 }],
      ["progress", { done: 1 }],
      ["progress", { done: 2 }],
      ["done", "bye"],
    ]);
    expect(run.published[2]!.at).toBe(T0 + 60_000);
    // The topic is the step's id: repeats get ":1", ":2", as any step's id does.
    expect(run.step("progress:2")).toMatchObject({ kind: "publish", status: "completed", output: { topic: "progress", data: { done: 2 } } });
  });

  it("is not sent again by the invocation that recovers from a crash after it was stored", async () => {
    const run = new TestRun(async ({ step }) => {
      await step.publish("started", null);
      await step.run("work", () => "w");
      return "end";
    }, { clock: new FakeClock(T0), crash: (invocation) => (invocation === 0 ? { atSave: 2 } : undefined) });
    expect(await run.drive()).toEqual({ type: "completed", output: "end" });
    expect(run.published.map((message) => message.topic)).toEqual(["started"]);
  });

  it("snapshots the data when called: a later change to the object is not published", async () => {
    const { run } = await drive(async ({ step }) => {
      const state = { done: 1 };
      const published = step.publish("progress", state);
      state.done = 2;
      await published;
    });
    expect(run.published[0]!.data).toEqual({ done: 1 });
  });

  it("fails for good inside a step body, and for data over the limit, with the limit in the message", async () => {
    const inBody = await drive(async ({ step }) => step.run("body", () => step.publish("nested", 1)), { retries: 3 });
    expect(inBody.outcome).toMatchObject({ type: "failed", error: { name: "StepError" } });
    expect(inBody.run.step("body")).toMatchObject({ status: "failed", attempts: 1, error: { message: expect.stringContaining("inside a step body") } });

    const tooBig = await drive(async ({ step }) => step.publish("big", "x".repeat(MAX_PUBLISH_BYTES)));
    expect(tooBig.outcome).toMatchObject({ type: "failed", error: { name: "NonRetriableError", message: expect.stringContaining("the limit is 64 KiB") } });
    expect(tooBig.run.published).toEqual([]);
  });
});
