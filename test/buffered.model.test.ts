// Buffered checkpoints, generated: programs fast-check makes (a few steps, within a buffer's size
// and past it, some failing a few attempts first, some after a short sleep), run by an interpreter
// function (test/buffered.functions.ts) under a generated `bufferedSteps` and `maxInterval`, in a
// real run's Durable Object killed once at a generated point (in a step's body at one of its
// attempts, or in the handler just after a step returned). What the object had written when it
// died is read from its storage before it recovers. Each program asserts the documented guarantee
// (docs/guarantees.md): the run completes with the output the program computes without a crash;
// a step whose result was written never runs again; one that was buffered and not written runs
// exactly once more; the stored steps hold the program's outputs, settled in the program's order.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { replayOrder } from "../sdk/replay.ts";
import { RunStore } from "../worker/runs/RunStore.ts";
import { BUFFER_INTERVALS_MS, BUFFER_SIZES, programEventName, programFunctionId, stepOutput, type BufferedProgram } from "./buffered.functions.ts";
import { derivedRunId, effectCount, endedRun, eventually, runStub, sendEvents, uniqueKey } from "./helpers.ts";

/** Fixed, so a failure reproduces; fast-check prints it with the counterexample too. */
const SEED = 21_2025;
const NUM_RUNS = 30;

type Case = Omit<BufferedProgram, "key"> & { size: number; intervalMs: number };
type Crash = NonNullable<BufferedProgram["crash"]>;

const stepArb = fc.record({
  fails: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.integer({ min: 1, max: 2 }), weight: 1 }),
  sleepMsBefore: fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: fc.integer({ min: 1, max: 5 }), weight: 1 }),
});

/** A crash point the program reaches: a step's body at one of its attempts, or the handler right after a step. */
const crashArb = (steps: Case["steps"]): fc.Arbitrary<Crash> =>
  fc.nat(steps.length - 1).chain((step) =>
    fc.oneof(
      fc.nat(steps[step]!.fails).map((attempt) => ({ step, attempt, where: "inStep" as const })),
      fc.constant({ step, attempt: 0, where: "afterStep" as const }),
    ),
  );

const caseArb: fc.Arbitrary<Case> = fc
  .record({ size: fc.constantFrom(...BUFFER_SIZES), intervalMs: fc.constantFrom(...BUFFER_INTERVALS_MS), steps: fc.array(stepArb, { minLength: 1, maxLength: 8 }) })
  .chain((program) => fc.oneof({ arbitrary: crashArb(program.steps), weight: 5 }, { arbitrary: fc.constant(undefined), weight: 1 }).map((crash) => ({ ...program, crash })));

/** What the program returns, and each step's output: the chain it computes, crash or not. */
function expectedOutputs(program: Case): string[] {
  const outputs: string[] = [];
  for (const index of program.steps.keys()) outputs.push(stepOutput(outputs.at(-1) ?? "start", index));
  return outputs;
}

/** The steps' names in the order the program settles them. */
function programOrder(program: Case): string[] {
  return program.steps.flatMap((step, index) => [...(step.sleepMsBefore !== undefined ? [`z${index}`] : []), `s${index}`]);
}

/** Whether step `index` had returned (its result saved, buffered or written) when the object died. */
function returnedBeforeCrash(crash: Crash, index: number): boolean {
  return crash.where === "inStep" ? index < crash.step : index <= crash.step;
}

/**
 * How many times each attempt of each step ran (keys `index:attempt`), given which steps' results
 * were written when the object died (null: unknown, the recovery began before it was read).
 * A killed attempt runs again; a returned step whose result was not written runs its last attempt again.
 */
function expectedRuns(program: Case, written: ReadonlySet<string> | null): Map<string, number | "once or twice"> {
  const runs = new Map<string, number | "once or twice">();
  const { crash } = program;
  program.steps.forEach(({ fails }, index) => {
    for (let attempt = 0; attempt <= fails; attempt++) {
      let count = 1;
      if (crash?.where === "inStep" && crash.step === index && crash.attempt === attempt) count++;
      const lost = crash !== undefined && attempt === fails && returnedBeforeCrash(crash, index);
      if (lost && written === null) {
        runs.set(`${index}:${attempt}`, "once or twice");
        continue;
      }
      if (lost && !written!.has(`s${index}`)) count++;
      runs.set(`${index}:${attempt}`, count);
    }
  });
  return runs;
}

/** The effects a run's steps recorded, by `index:attempt`. */
async function recordedRuns(key: string): Promise<Map<string, number>> {
  const rows = await env.DB.prepare("SELECT key, COUNT(*) AS n FROM test_effects WHERE key LIKE ?1 GROUP BY key").bind(`${key}:%`).all<{ key: string; n: number }>();
  return new Map(rows.results.filter((row) => !row.key.endsWith(":crash")).map((row) => [row.key.slice(key.length + 1), row.n]));
}

/**
 * What the killed object had written, read from its storage by a fresh instance before it recovers:
 * the names of the steps stored as completed, on their own rows or in a bundle (read raw, not
 * through RunStore, whose reading is under test). Null if the recovery began first.
 */
async function writtenAtCrash(runId: string): Promise<Set<string> | null> {
  return eventually(
    () =>
      runInDurableObject(runStub(runId), (instance, state) => {
        // The instance the kill reset was running an invocation; a fresh one runs nothing until asked.
        if ((instance as unknown as { executing: Promise<void> | null }).executing !== null) return undefined;
        const sql = state.storage.sql;
        if (sql.exec<{ crashes: number }>("SELECT crashes FROM run").one().crashes > 0) return null;
        const tables = new Set(sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((row) => row.name));
        const written = new Set<string>();
        if (tables.has("steps")) for (const row of sql.exec<{ name: string }>("SELECT name FROM steps WHERE status = 'completed'")) written.add(row.name);
        // Results still buffered at the run's end are written on its row.
        for (const row of sql.exec<{ last_steps: string | null }>("SELECT last_steps FROM run")) {
          for (const step of JSON.parse(row.last_steps ?? "[]") as { name: string; status: string }[]) if (step.status === "completed") written.add(step.name);
        }
        if (tables.has("step_bundles")) {
          for (const row of sql.exec<{ steps: string }>("SELECT steps FROM step_bundles")) {
            for (const step of JSON.parse(row.steps) as { name: string; status: string }[]) if (step.status === "completed") written.add(step.name);
          }
        }
        return written;
      }).catch(() => undefined),
    15_000,
    `a fresh instance of run ${runId}'s object after the kill`,
  );
}

/** The run's stored steps as its object reads them, in the order a replay settles them (the order they first settled). */
async function storedSteps(runId: string) {
  return runInDurableObject(runStub(runId), (_, state) => {
    const store = new RunStore(state.storage.sql);
    const steps = store.steps();
    return replayOrder(steps.values(), store.run()!.starts).map((id) => steps.get(id)!).map((step) => ({ name: step.name, status: step.status, output: step.output }));
  });
}

/** Runs one generated program to its end and asserts the guarantee. */
async function checkProgram(program: Case): Promise<void> {
  const key = uniqueKey("bprop");
  const [eventId] = await sendEvents({ name: programEventName(program.size, program.intervalMs), data: { key, steps: program.steps, ...(program.crash ? { crash: program.crash } : {}) } });
  const runId = await derivedRunId(programFunctionId(program.size, program.intervalMs), eventId!);
  let written: Set<string> | null = new Set();
  if (program.crash) {
    await eventually(async () => ((await effectCount(`${key}:crash`)) > 0 ? true : undefined), 20_000, "the program's crash point");
    written = await writtenAtCrash(runId);
  }
  const run = await endedRun(runId);
  const outputs = expectedOutputs(program);
  const context = JSON.stringify({ program, runId, written: written && [...written] });
  if (program.crash && written) {
    // A full buffer is written when the next result arrives: a crash loses at most `bufferedSteps`.
    const lost = program.steps.filter((_, index) => returnedBeforeCrash(program.crash!, index) && !written!.has(`s${index}`));
    expect(lost.length, `results lost; ${context}`).toBeLessThanOrEqual(program.size);
  }
  expect(run.status, context).toBe("Completed");
  expect(run.output, context).toBe(outputs.at(-1));
  const steps = await storedSteps(runId);
  expect(steps.map((step) => step.name), `settle order; ${context}`).toEqual(programOrder(program));
  expect(steps.filter((step) => step.name.startsWith("s")).map((step) => [step.status, step.output]), context).toEqual(outputs.map((output) => ["completed", output]));
  const recorded = await recordedRuns(key);
  const expected = expectedRuns(program, written);
  expect([...recorded.keys()].sort(), `attempts that ran; ${context}`).toEqual([...expected.keys()].sort());
  for (const [attempt, count] of expected) {
    if (count === "once or twice") expect([1, 2], `runs of ${attempt}; ${context}`).toContain(recorded.get(attempt));
    else expect(recorded.get(attempt), `runs of step:attempt ${attempt}; ${context}`).toBe(count);
  }
}

describe("buffered checkpoints over generated programs", () => {
  it("a crash re-runs exactly the steps not written yet; the run completes as it would have without it", async () => {
    console.log(`buffered.model: seed ${SEED}, ${NUM_RUNS} programs`);
    await fc.assert(fc.asyncProperty(caseArb, checkProgram), { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true });
  }, 120_000);
});
