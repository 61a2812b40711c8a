import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../worker/platform/env.ts";
import { eventDayPrefix, runPrefix } from "../worker/platform/largeValues.ts";
import { pruneExpired } from "../worker/schedule/tick.ts";
import { effectCount, eventually, finishedRuns, getRun, request, runStub, sendEvents, uniqueKey } from "./helpers.ts";
import { ageIndexRow, DAY, endInIndex, pruneUntilGone } from "./indexRows.ts";
import worker from "./worker.ts";

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

  it("deletes a run's objects in R2 with its storage once the tick prunes its index row at retention", async () => {
    const [eventId] = await sendEvents({ name: "test/large.output", data: { key: uniqueKey("large-output"), bytes: 2 * MiB } });
    const run = (await finishedRuns(eventId!)).get("large-output")!;
    expect(await keysUnder(runPrefix(run.run_id))).toHaveLength(1);
    await endInIndex(run.run_id);
    // Its row 20 days old, pruned as if 20 days from now: past retention, where other tests' rows are not.
    await ageIndexRow(run.run_id, 20 * DAY);
    await pruneUntilGone(run.run_id, Date.now() + 20 * DAY);
    // Its object, told through the queue, deletes its storage and its objects in R2.
    await eventually(async () => ((await runStub(run.run_id).getRun()) === null ? true : undefined), 15_000, "the run's object deleted");
    expect(await keysUnder(runPrefix(run.run_id))).toEqual([]);
  });
});

describe("large events", () => {
  it("accepts a 3 MiB event, keeps its data in R2 with the log's row naming it, and hands it whole to the run it triggers", async () => {
    const blob = "y".repeat(3 * MiB);
    const [eventId] = await sendEvents({ name: "test/large.event", data: { blob } });
    const run = (await finishedRuns(eventId!)).get("large-event")!;
    expect(run).toMatchObject({ status: "Completed", output: { length: 3 * MiB, intact: true } });
    const row = await env.DB.prepare("SELECT data, received_at FROM events WHERE id = ?1").bind(eventId).first<{ data: string; received_at: number }>();
    expect(row?.data).toBe(`r2:${eventDayPrefix(row!.received_at)}${eventId}.${row!.received_at}`);
    // The event's view reads its data back from R2.
    const view = (await (await request(`/v1/events/${eventId}`)).json()) as { data: { data: { blob: string } } };
    expect(view.data.data.blob.length).toBe(3 * MiB);
  });

  it("deletes events' data in R2 a day at a time once the whole day is past retention", async () => {
    const now = Date.now();
    const oldKey = `${eventDayPrefix(now - 40 * 86_400_000)}${uniqueKey("old")}.1`;
    const youngKey = `${eventDayPrefix(now - 29 * 86_400_000)}${uniqueKey("young")}.1`;
    await env.VALUES!.put(oldKey, "{}");
    await env.VALUES!.put(youngKey, "{}");
    await pruneExpired(env, now);
    expect(await env.VALUES!.head(oldKey)).toBeNull();
    expect(await env.VALUES!.head(youngKey)).not.toBeNull();
  });
});

describe("without a bucket bound", () => {
  const unbound: Env = { ...env, VALUES: undefined };

  function post(body: string): Promise<Response> {
    const init = { method: "POST", headers: { "content-type": "application/json" }, body };
    return Promise.resolve(worker.fetch!(new Request("http://stepflare.test/e/test-key", init) as Request<unknown, IncomingRequestCfProperties>, unbound, createExecutionContext()));
  }

  it("refuses a 3 MiB event with a 413 whose JSON names the limit and how to raise it, and stores nothing", async () => {
    const key = uniqueKey("unbound");
    const response = await post(JSON.stringify({ name: "test/large.event", data: { key, blob: "y".repeat(3 * MiB) } }));
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: expect.stringMatching(/limit per request; bind an R2 bucket as VALUES to raise it to 16 MiB/) });
    const tooLarge = await post(JSON.stringify({ name: "test/large.event", data: { key, blob: "y".repeat(600 * 1024) } }));
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ error: expect.stringMatching(/the limit is 524288 bytes \(512 KiB\) per event; bind an R2 bucket as VALUES/), path: "0" });
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE data LIKE ?1").bind(`%${key}%`).first("n")).toBe(0);
  });
});
