import { experiment as inngestExperiment } from "inngest";
import { describe, expect, it } from "vitest";
import { experiment } from "./experiment.ts";
import { TestRun } from "./testing.ts";

describe("group.experiment", () => {
  it("picks once: the variant stays the same on every replay, and its steps are steps of the run", async () => {
    let picks = 0;
    const run = new TestRun(async ({ step, group }) => {
      const outcome = await group.experiment("checkout-flow", {
        variants: {
          control: () => step.run("old-checkout", () => "old"),
          new_flow: async () => {
            await step.sleep("think", "1m");
            return step.run("new-checkout", () => "new");
          },
        },
        // Whatever it picks first is what the run keeps, however often it is asked again.
        select: experiment.custom(() => (++picks === 1 ? "new_flow" : "control")),
      });
      await step.sleep("after", "1m");
      return outcome;
    });
    expect(await run.drive()).toEqual({
      type: "completed",
      output: { result: "new", variant: "new_flow", experimentRef: { experimentName: "checkout-flow", variant: "new_flow" } },
    });
    expect(picks).toBe(1);
    expect(run.outcomes.length).toBe(3);
    expect(run.step("checkout-flow")).toMatchObject({ status: "completed", output: "new_flow" });
    expect(run.step("old-checkout")).toBeUndefined();
  });

  it("takes Inngest's step options as its id", async () => {
    const run = new TestRun(async ({ step, group }) =>
      (await group.experiment({ id: "pick", name: "Pick" }, { variants: { only: () => step.run("only", () => 1) }, select: experiment.fixed("only") })).result,
    );
    expect(await run.drive()).toEqual({ type: "completed", output: 1 });
    expect(run.step("pick")?.output).toBe("only");
  });

  it("fails for good when select names no variant, or the variant calls no step tool", async () => {
    const unknown = new TestRun(async ({ step, group }) => group.experiment("x", { variants: { a: () => step.run("a", () => 1) }, select: experiment.fixed("b") }));
    expect(await unknown.drive()).toMatchObject({ type: "failed", error: { name: "StepError", message: expect.stringContaining('select() returned "b", which is not a variant') } });
    expect(unknown.step("x")).toMatchObject({ status: "failed", attempts: 1 });
    const stepless = new TestRun(async ({ group }) => group.experiment("y", { variants: { a: async () => 1 }, select: experiment.fixed("a") }));
    expect(await stepless.drive()).toMatchObject({ type: "failed", error: { name: "NonRetriableError", message: expect.stringContaining('variant "a" called no step tool') } });
  });

  it("weighted: seeded by the run id, the same choice Inngest's hash makes for it", async () => {
    const weights = { a: 70, b: 20, c: 10 };
    const chosen: string[] = [];
    for (let i = 0; i < 40; i++) {
      const runId = `run-${i}`;
      const run = new TestRun(async ({ step, group }) => (await group.experiment("w", { variants: { a: () => step.run("a", () => "a"), b: () => step.run("b", () => "b"), c: () => step.run("c", () => "c") }, select: experiment.weighted(weights) })).variant, { runId });
      const outcome = await run.drive();
      const expected = await inngestExperiment.bucket(runId, { weights })();
      expect(outcome).toEqual({ type: "completed", output: expected });
      chosen.push(expected);
    }
    // Forty runs are spread over the variants, not all given one.
    expect(new Set(chosen).size).toBeGreaterThan(1);
  });
});

describe("experiment strategies", () => {
  it("bucket: the same value always lands in the same variant, as in Inngest", async () => {
    const names = ["control", "new_flow", "third"];
    for (const value of ["u1", "u2", "user-42", 7, null, undefined]) {
      const ours = await experiment.bucket(value)(names);
      expect(ours).toBe(await inngestExperiment.bucket(value)(names));
      expect(await experiment.bucket(value)(names)).toBe(ours);
    }
    expect(experiment.bucket(null).__experimentConfig).toEqual({ strategy: "bucket", nullishBucket: true });
  });

  it("refuses weights that cannot pick anything", () => {
    expect(() => experiment.weighted({ a: 0, b: 0 })).toThrow(/all zero/);
    expect(() => experiment.weighted({ a: -1 })).toThrow(/>= 0/);
    expect(experiment.weighted({ a: 1 }).__experimentConfig).toEqual({ strategy: "weighted", weights: { a: 1 } });
  });
});
