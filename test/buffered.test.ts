// Buffered checkpoints under workerd (issue 21): a function with `checkpointing.bufferedSteps`
// writes consecutive step results as one row, and a crash re-runs the steps not written yet.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { usage } from "../worker/platform/usage.ts";
import { RunStore } from "../worker/runs/RunStore.ts";
import { programEventName, programFunctionId, type BufferedProgram } from "./buffered.functions.ts";
import { derivedRunId, effectCount, endedRun, eventually, finishedRuns, getRun, runIdOf, runStub, sendEvents, uniqueKey } from "./helpers.ts";

/** Runs a program of test/buffered.functions.ts's interpreter (two results a row, 10 s apart at most) to its end. */
async function runProgram(program: Omit<BufferedProgram, "key">) {
  const key = uniqueKey("buffered-program");
  const [eventId] = await sendEvents({ name: programEventName(2, 10_000), data: { key, ...program } });
  return { key, run: await endedRun(await derivedRunId(programFunctionId(2, 10_000), eventId!)) };
}

describe("buffered checkpoints", () => {
  it("writes three step results as one row when a fourth arrives, the last two on the end's row, and reads them back in order", async () => {
    const key = uniqueKey("buffered");
    const [eventId] = await sendEvents({ name: "test/buffered-steps", data: { key } });
    const run = (await finishedRuns(eventId!)).get("buffered-steps")!;
    expect(run).toMatchObject({ status: "Completed", output: "abcde" });
    const runId = await runIdOf(eventId!);
    const rows = await runInDurableObject(runStub(runId), (_, state) => ({
      bundles: state.storage.sql.exec("SELECT COUNT(*) AS n FROM step_bundles").one().n,
      steps: state.storage.sql.exec("SELECT COUNT(*) AS n FROM steps").one().n,
      onEnd: (JSON.parse(state.storage.sql.exec<{ last: string }>("SELECT last_steps AS last FROM run").one().last) as { name: string }[]).map((step) => step.name),
    }));
    expect(rows).toEqual({ bundles: 1, steps: 0, onEnd: ["d", "e"] });
    expect((await getRun(runId)).steps?.map((step) => [step.name, step.output])).toEqual(["a", "b", "c", "d", "e"].map((name) => [name, name]));
    for (const name of ["a", "b", "c", "d", "e"]) expect(await effectCount(`${key}:${name}`)).toBe(1);
  });

  it("runs again the steps a crash caught before their results were written, and completes", async () => {
    const key = uniqueKey("buffered-die");
    const [eventId] = await sendEvents({ name: "test/buffered-steps", data: { key, die: true } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await effectCount(`${key}:c`)) === 1 ? true : undefined));
    // The watchdog alarm wakes the object the step killed (run here at once, as engine.test.ts does).
    const run = await eventually(async () => {
      await runStub(runId).status().catch(() => null);
      await runDurableObjectAlarm(runStub(runId)).catch(() => false);
      const found = await getRun(runId);
      return found.status === "Completed" ? found : undefined;
    }, 20_000, "the run to complete after the crash");
    expect(run.output).toBe("abcde");
    // a and b were buffered, not written, when c killed the object: they ran again; d and e once.
    expect([await effectCount(`${key}:a`), await effectCount(`${key}:b`), await effectCount(`${key}:c`)]).toEqual([2, 2, 2]);
    expect([await effectCount(`${key}:d`), await effectCount(`${key}:e`)]).toEqual([1, 1]);
  });

  // Found by test/buffered.model.test.ts: a step's own row (a failed attempt) hid the
  // completion bundled after it, so a crash ran a written step again and the replay never settled.
  it("a step that failed an attempt and then completed into a written row never runs again after a crash", async () => {
    // Steps 0 and 1 fill the buffer, written when step 2's result arrives; the crash just after step 2
    // loses only step 2's result.
    const { key, run } = await runProgram({ steps: [{ fails: 1 }, { fails: 0 }, { fails: 0 }], crash: { step: 2, attempt: 0, where: "afterStep" } });
    expect(run).toMatchObject({ status: "Completed", output: "start>0>1>2" });
    expect([await effectCount(`${key}:0:0`), await effectCount(`${key}:0:1`), await effectCount(`${key}:1:0`), await effectCount(`${key}:2:0`)]).toEqual([1, 1, 1, 2]);
  });

  it("reads a step's completion in a bundle over the failed attempt its own row holds", async () => {
    const stub = env.RUNS.get(env.RUNS.idFromName(uniqueKey("store")));
    const steps = await runInDurableObject(stub, (_, state) => {
      const store = new RunStore(state.storage.sql);
      store.createRun({ id: "r1", functionId: "f", events: [{ id: "e1", name: "a/b", data: {}, ts: 1 }], startedAt: 1, listedAt: 1, indexedOn: null });
      store.saveStep({ id: "flaky", name: "flaky", kind: "run", status: "retrying", attempts: 1, wakeAt: 3, startedAt: 1, endedAt: 2 });
      const limits = { maxSteps: 2, maxIntervalMs: 60_000 };
      store.bufferStep({ id: "flaky", name: "flaky", kind: "run", status: "completed", attempts: 2, output: "ok", seq: 1, startedAt: 4, endedAt: 5 }, limits);
      store.bufferStep({ id: "next", name: "next", kind: "run", status: "completed", attempts: 1, output: "ok", seq: 2, startedAt: 5, endedAt: 6 }, limits);
      store.flush();
      return [...new RunStore(state.storage.sql).steps().values()].map((step) => [step.id, step.status, step.seq]);
    });
    expect(steps).toEqual([["flaky", "completed", 1], ["next", "completed", 2]]);
  });

  it("stores buffered results in one row, before any other write, and a later save of one of them wins", async () => {
    const stub = env.RUNS.get(env.RUNS.idFromName(uniqueKey("store")));
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      const store = new RunStore(sql);
      store.createRun({ id: "r1", functionId: "f", events: [{ id: "e1", name: "a/b", data: {}, ts: 1 }], startedAt: 1, listedAt: 1, indexedOn: null });
      const before = usage.doRowsWritten;
      const step = (id: string, at: number, output: unknown) => ({ id, name: id, kind: "run" as const, status: "completed" as const, attempts: 1, output, startedAt: at, endedAt: at });
      const limits = { maxSteps: 10, maxIntervalMs: 60_000 };
      store.bufferStep(step("one", 2, 1), limits);
      store.bufferStep(step("two", 3, 2), limits);
      const whileBuffered = usage.doRowsWritten - before;
      // Any other write of the run writes the buffered results first: here, a step saved on its own.
      store.saveStep(step("three", 4, 3));
      store.saveStep(step("one", 2, "again"));
      const rows = usage.doRowsWritten - before;
      const reread = new RunStore(sql);
      return { whileBuffered, rows, steps: [...reread.steps().values()].map((saved) => [saved.id, saved.output]) };
    });
    expect(result.whileBuffered).toBe(0);
    // One row for the two buffered results, one per step saved on its own.
    expect(result.rows).toBe(3);
    expect(result.steps).toEqual([["one", "again"], ["two", 2], ["three", 3]]);
  });

  it("writes the results still buffered at the run's end on the end's own row: 2 rows for a run shorter than its buffer", async () => {
    const stub = env.RUNS.get(env.RUNS.idFromName(uniqueKey("store")));
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      const store = new RunStore(sql);
      const before = usage.doRowsWritten;
      store.createRun({ id: "r1", functionId: "f", events: [{ id: "e1", name: "a/b", data: {}, ts: 1 }], startedAt: 1, listedAt: 1, indexedOn: null });
      const limits = { maxSteps: 10, maxIntervalMs: 60_000 };
      for (const [i, id] of ["a", "b", "c"].entries()) store.bufferStep({ id, name: id, kind: "run", status: "completed", attempts: 1, output: id.repeat(i + 1), seq: i, startedAt: i + 2, endedAt: i + 2 }, limits);
      store.end("Completed", 9, { output: "done" });
      return {
        rows: usage.doRowsWritten - before,
        bundles: sql.exec("SELECT COUNT(*) AS n FROM step_bundles").one().n,
        reread: [...new RunStore(sql).steps().values()].map((step) => [step.id, step.output]),
        run: new RunStore(sql).run()?.status,
      };
    });
    expect(result).toEqual({ rows: 2, bundles: 0, reread: [["a", "a"], ["b", "bb"], ["c", "ccc"]], run: "Completed" });
  });

  it("keeps a full buffer until the next result or the end: a run whose last result fills it writes 2 rows, one of a result more 3", async () => {
    /** Rows a run of `steps` results buffered three at a time writes: while they wait, and in all with its end. */
    const rowsFor = (steps: number) =>
      runInDurableObject(env.RUNS.get(env.RUNS.idFromName(uniqueKey("store"))), (_, state) => {
        const store = new RunStore(state.storage.sql);
        const before = usage.doRowsWritten;
        store.createRun({ id: "r1", functionId: "f", events: [{ id: "e1", name: "a/b", data: {}, ts: 1 }], startedAt: 1, listedAt: 1, indexedOn: null });
        const limits = { maxSteps: 3, maxIntervalMs: 60_000 };
        for (let i = 0; i < steps; i++) store.bufferStep({ id: `s${i}`, name: `s${i}`, kind: "run", status: "completed", attempts: 1, output: i, seq: i, startedAt: i + 2, endedAt: i + 2 }, limits);
        const beforeEnd = usage.doRowsWritten - before;
        store.end("Completed", 99, { output: "done" });
        return { beforeEnd, rows: usage.doRowsWritten - before, reread: [...new RunStore(state.storage.sql).steps().values()].map((step) => step.output) };
      });
    expect(await rowsFor(3)).toEqual({ beforeEnd: 1, rows: 2, reread: [0, 1, 2] });
    expect(await rowsFor(4)).toEqual({ beforeEnd: 2, rows: 3, reread: [0, 1, 2, 3] });
  });
});
