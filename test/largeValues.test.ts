import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runPrefix } from "../worker/platform/largeValues.ts";
import { effectCount, eventually, finishedRuns, getRun, runStub, sendEvents, uniqueKey } from "./helpers.ts";

const MiB = 1024 * 1024;

/** The keys the tests' R2 bucket holds under `prefix`. */
async function keysUnder(prefix: string): Promise<string[]> {
  return (await env.VALUES!.list({ prefix })).objects.map((object) => object.key);
}

/** What a step's row holds in its `output` column, as stored (JSON, or a reference). */
async function storedOutput(runId: string, stepName: string): Promise<string | null> {
  return runInDurableObject(runStub(runId), (_object, state) => state.storage.sql.exec<{ output: string | null }>("SELECT output FROM steps WHERE name = ?", stepName).one().output);
}

describe("large values in R2 (a bucket bound as VALUES)", () => {
  it("stores a 3 MiB step output in R2, its row naming it, and replays it memoized without running the step again", async () => {
    const key = uniqueKey("large-output");
    const [eventId] = await sendEvents({ name: "test/large.output", data: { key, bytes: 3 * MiB } });
    const run = (await finishedRuns(eventId!)).get("large-output")!;
    // The sleep made the run replay from the top: the output came back from R2, and the step ran once.
    expect(run).toMatchObject({ status: "Completed", output: { length: 3 * MiB, intact: true, small: "small" } });
    expect(await effectCount(`${key}:big`)).toBe(1);
    expect(await storedOutput(run.run_id, "big")).toMatch(/^r2:runs\//);
    expect(await keysUnder(runPrefix(run.run_id))).toHaveLength(1);
    // A small output stays in its row.
    expect(await storedOutput(run.run_id, "small")).toBe('"small"');
    // The run's view reads the output back from R2.
    const view = await getRun(run.run_id);
    expect((view.steps?.find((step) => step.name === "big")?.output as string).length).toBe(3 * MiB);
  });

  it("takes a step output past the 4 MiB of a row-only store, and refuses one past 16 MiB naming the limit", async () => {
    const [fits, tooLarge] = await sendEvents([
      { name: "test/large.output", data: { key: uniqueKey("large-output"), bytes: 6 * MiB } },
      { name: "test/large.output", data: { key: uniqueKey("large-output"), bytes: 16 * MiB + 1 } },
    ]);
    expect((await finishedRuns(fits!)).get("large-output")).toMatchObject({ status: "Completed", output: { length: 6 * MiB, intact: true } });
    const failed = (await finishedRuns(tooLarge!)).get("large-output")!;
    expect(failed.status).toBe("Failed");
    expect(failed.error?.message).toMatch(/step "big" output is 16\.0 MiB; the limit is 16 MiB: return a reference instead$/);
  });

  it("deletes a run's objects in R2 with its storage once its retention is over", async () => {
    const [eventId] = await sendEvents({ name: "test/large.output", data: { key: uniqueKey("large-output"), bytes: 2 * MiB } });
    const run = (await finishedRuns(eventId!)).get("large-output")!;
    expect(await keysUnder(runPrefix(run.run_id))).toHaveLength(1);
    // The alarm stands at the end of the retention period once the run's end reached the index.
    await eventually(async () => {
      const at = await runInDurableObject(runStub(run.run_id), (_object, state) => state.storage.getAlarm());
      return at !== null && at > Date.now() + 29 * 24 * 3600_000 ? true : undefined;
    });
    // Thirty-one days later (moved in the object's record rather than waited for):
    await runInDurableObject(runStub(run.run_id), (object, state) => {
      state.storage.sql.exec("UPDATE run SET ended_at = ?", Date.now() - 31 * 24 * 3600_000);
      (object as unknown as { store: { clear(): void } }).store.clear();
    });
    await runDurableObjectAlarm(runStub(run.run_id));
    expect(await runStub(run.run_id).getRun()).toBeNull();
    expect(await keysUnder(runPrefix(run.run_id))).toEqual([]);
  });
});
