// The ids of the engine's own events (issue 20): a sender who predicts a run's id must not be able
// to claim beforehand the id of an event the engine will send for it, which would make the engine's
// event a duplicate the event log drops (onFailure, onCancel or a step's event never starting).
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sendEventId } from "../sdk/step.ts";
import { engineEventId, type StoredEvent } from "../sdk/event.ts";
import { parseEvents } from "../worker/ingest/ingest.ts";
import { startDirectRun } from "../worker/runs/door.ts";
import type { Env } from "../worker/platform/env.ts";
import { app } from "./worker.ts";
import { effectCount, eventually, finishedRuns, request, runStub, sendEvents, uniqueKey } from "./helpers.ts";

/** A run id as the engine makes them (32 hex characters), known to the test as a sender could predict it. */
function predictedRunId(): string {
  return crypto.randomUUID().replace(/-/g, "");
}

/** Starts a run of `functionId` under a run id of the test's choosing, as the door starts any run. */
async function startRunAs(runId: string, functionId: string, name: string, data: Record<string, unknown>): Promise<void> {
  const now = Date.now();
  const event: StoredEvent = { id: uniqueKey("trigger"), name, data, ts: now };
  await startDirectRun(env as Env, { runId, functionId, events: [event], startAt: now, startedAt: now });
}

/** Sends ordinary events carrying `ids`, as anyone with an event key may. */
async function claim(ids: string[]): Promise<void> {
  expect(await sendEvents(ids.map((id) => ({ id, name: uniqueKey("test/claim"), data: {} })))).toEqual(ids);
}

/** The id step.sendEvent derived before issue 20: 32 hex characters, which any sender could send. */
function oldSendEventId(runId: string, stepName: string, position: number): string {
  return bytesToHex(sha256(new TextEncoder().encode(`${runId}\n${stepName}\n${position}`)).slice(0, 16));
}

/** Every id the engine gives an event of run `runId`, and the event id a cron's run id derives from (schedule/crons.ts). */
function engineIdsOf(runId: string): string[] {
  const events = [...["failed", "cancelled", "finished", "invoked"].map((kind) => engineEventId(runId, kind)), engineEventId("cron", runId), sendEventId(runId, "next", 0)];
  return [...events, "stepflare:cron * * * * *"];
}

function post(events: unknown): Promise<Response> {
  return request("/e/test-key", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(events) });
}

describe("the engine's event ids", () => {
  it("runs onFailure although a sender sent events with the run's old failure, finish and cancel ids first", async () => {
    const runId = predictedRunId();
    const key = uniqueKey("claimed-failure");
    await claim([`${runId}-failed`, `${runId}-finished`, `${runId}-cancelled`]);
    await startRunAs(runId, "fails-after-pause", "test/fails-after-pause", { key, pauseMs: 0 });
    await eventually(async () => ((await effectCount(`${key}:onFailure`)) === 1 ? true : undefined), 15_000, "onFailure");
    expect((await finishedRuns(engineEventId(runId, "failed"))).get("fails-after-pause-failure")).toMatchObject({ status: "Completed" });
  });

  it("runs onCancel although a sender sent an event with the run's old cancel id first", async () => {
    const runId = predictedRunId();
    const key = uniqueKey("claimed-cancel");
    await claim([`${runId}-cancelled`]);
    await startRunAs(runId, "cancel-on", "test/cancel-on.start", { key });
    await eventually(async () => ((await effectCount(`${key}:first`)) === 1 ? true : undefined), 15_000, "the first step");
    await runStub(runId).cancel();
    await eventually(async () => ((await effectCount(`${key}:onCancel:api`)) === 1 ? true : undefined), 15_000, "onCancel");
    expect((await finishedRuns(engineEventId(runId, "cancelled"))).get("cancel-on-cancel")).toMatchObject({ status: "Completed" });
  });

  it("delivers a step's event although a sender sent an event with its old derived id first", async () => {
    const runId = predictedRunId();
    const key = uniqueKey("claimed-send");
    await claim([oldSendEventId(runId, "next", 0)]);
    await startRunAs(runId, "chain-start", "test/chain.start", { key });
    const next = (await finishedRuns(sendEventId(runId, "next", 0))).get("chain-next");
    expect(next).toMatchObject({ status: "Completed", output: { reached: key } });
  });

  it("refuses from a sender every id the engine gives, naming it, and stores none of the request", async () => {
    const runId = predictedRunId();
    const name = uniqueKey("test/beside-reserved-id");
    for (const id of engineIdsOf(runId)) {
      const response = await post([{ name }, { id, name }]);
      expect(response.status, id).toBe(400);
      expect(await response.json()).toEqual({
        error: `event 1: the id ${JSON.stringify(id)} is reserved: ids starting with "stepflare:" are given only by Stepflare to its own events`,
        path: "1.id",
      });
      await expect(app.send({ id, name })).rejects.toThrow(/event 0: the id "stepflare:.*" is reserved/);
    }
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE name = ?1").bind(name).first<{ n: number }>())?.n).toBe(0);
    // The engine's own ids (step.sendEvent's, given by the engine) pass the same parse.
    expect(parseEvents([{ name }], () => sendEventId(runId, "next", 0)).map((event) => event.id)).toEqual([sendEventId(runId, "next", 0)]);
  });
});
