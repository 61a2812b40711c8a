import { describe, expect, it } from "vitest";
import { dispatched, finishedRuns, runsOf, sendEvents, uniqueKey } from "./helpers.ts";

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
});
