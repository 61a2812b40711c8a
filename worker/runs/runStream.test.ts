import { describe, expect, it } from "vitest";
import type { StepRecord } from "../../sdk/driver.ts";
import type { RunRecord } from "./RunStore.ts";
import { RunStream } from "./runStream.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const run: RunRecord = {
  id: "0123456789abcdef0123456789abcdef",
  functionId: "f",
  events: [{ id: "e", name: "test/e", data: {}, ts: T0 }],
  status: "Running",
  handlerFailures: { count: 0, unitSeq: 0 },
  starts: [{ at: T0, seq: 0 }],
  isOpen: true,
  crashes: 0,
  startedAt: T0,
  listedAt: T0,
  indexedOn: null,
};
const step = (name: string, output: unknown): StepRecord => ({ id: name, name, kind: "run", status: "completed", attempts: 1, output, startedAt: T0, endedAt: T0 });

/** The events a response has sent so far: its body up to now, as `event id` pairs. */
async function received(response: Response, count: number): Promise<{ event: string; id: string }[]> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (text.split("\n\n").length - 1 < count) text += decoder.decode((await reader.read()).value);
  reader.releaseLock();
  return text
    .split("\n\n")
    .filter(Boolean)
    .map((block) => ({ id: /^id: (.*)$/m.exec(block)![1]!, event: /^event: (.*)$/m.exec(block)![1]! }));
}

describe("RunStream", () => {
  it("resumes after a Last-Event-ID it still holds, and sends the history again for one it dropped", async () => {
    const stream = new RunStream();
    const first = await received(stream.subscribe(run, [], null), 1);
    expect(first.map((e) => e.event)).toEqual(["run"]);
    stream.stepSaved(step("a", "x".repeat(600_000)));
    stream.stepSaved(step("b", "y"));
    const resumed = await received(stream.subscribe(run, [], first[0]!.id), 2);
    expect(resumed.map((e) => e.event)).toEqual(["step", "step"]);

    // Over 1 MiB of events since: "a" has left the backlog, so a resume from before it cannot be served.
    stream.stepSaved(step("c", "z".repeat(600_000)));
    const fromBeforeA = await received(stream.subscribe(run, [step("a", 1), step("b", 2), step("c", 3)], first[0]!.id), 4);
    expect(fromBeforeA.map((e) => e.event)).toEqual(["run", "step", "step", "step"]);
    const fromB = await received(stream.subscribe(run, [], resumed[1]!.id), 1);
    expect(fromB).toHaveLength(1);
    stream.runEnded({ ...run, status: "Completed", endedAt: T0 });
  });

  it("closes every stream at the run's end, and answers a finished run with its history and end only", async () => {
    const stream = new RunStream();
    const response = stream.subscribe(run, [], null);
    stream.runEnded({ ...run, status: "Completed", output: 1, endedAt: T0 });
    expect(await response.text()).toMatch(/event: run[\s\S]*event: end\ndata: \{[^\n]*"status":"Completed"/);
    expect(stream.subscriberCount).toBe(0);
    const finished = await stream.subscribe({ ...run, status: "Failed", endedAt: T0 }, [step("a", 1)], null).text();
    expect([...finished.matchAll(/^event: (.*)$/gm)].map((match) => match[1])).toEqual(["run", "step", "end"]);
  });
});

describe("RunStream: a subscriber that does not read", () => {
  it("is dropped once too far behind, and the others go on", async () => {
    const stream = new RunStream();
    const stalled = stream.subscribe(run, [], null);
    const reading = stream.subscribe(run, [], null);
    const reader = reading.body!.getReader();
    let read = 0;
    const readAll = (async () => {
      while (!(await reader.read()).done) read++;
    })();
    for (let i = 0; i < 10_001; i++) {
      stream.stepSaved(step(`s${i}`, i));
      if (i % 1000 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect(stream.subscriberCount).toBe(1);
    stream.runEnded({ ...run, status: "Completed", endedAt: T0 });
    await readAll;
    expect(read).toBe(1 + 10_001 + 1);
    await expect(stalled.text()).rejects.toThrow();
  });
});
