import { describe, expect, it } from "vitest";
import type { StepRecord } from "../../sdk/run.ts";
import { costInDollars, runUsage } from "./runCost.ts";

const step = (kind: StepRecord["kind"], output?: unknown): StepRecord => ({ id: "h", name: "s", kind, status: "completed", attempts: 1, output, startedAt: 0 });
const starts = (n: number) => Array.from({ length: n }, (_, i) => ({ at: i, seq: 0 }));

describe("a run's estimated cost", () => {
  it("counts what the bench measures per run: a 5-step run sent alone is $11.60 a million at list price (no alarm set; its deletion at retention a request)", () => {
    const usage = runUsage({ starts: starts(1) }, Array.from({ length: 5 }, () => step("run")));
    expect(usage).toEqual({ doRequests: 2, doRowsWritten: 7, d1RowsWritten: 4, queueMessages: 0, workersRequests: 1 });
    expect(costInDollars(usage) * 1_000_000).toBeCloseTo(11.6, 10);
  });

  it("adds each later invocation with its alarm, and each event sent", () => {
    const usage = runUsage({ starts: starts(2) }, [step("sleep"), step("sendEvent", { ids: ["a", "b"] })]);
    // 2 steps, the later invocation's alarm and its 2 rows, the 2 events' outbox rows and deletions.
    expect(usage).toEqual({ doRequests: 3, doRowsWritten: 2 + 2 + 1 + 2 + 4, d1RowsWritten: 4 + 8, queueMessages: 2, workersRequests: 1 });
  });
});
