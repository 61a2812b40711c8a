import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { engineEventId } from "../sdk/event.ts";
import { eventMatchKeys } from "../sdk/wait.ts";
import { findWaitsStatement } from "../worker/db/waits.ts";
import { dispatchEvent } from "../worker/dispatch/events.ts";
import { effectCount, eventually, finishedRuns, getRun, request, runIdOf, runsOf, sendEvents, uniqueKey, type RunJson } from "./helpers.ts";

/** The step named `name` of a run, as the REST API shows it. */
async function stepOf(runId: string, name: string) {
  return (await getRun(runId)).steps?.find((step) => step.name === name);
}

/** Waits until the run's step `name` waits (its wait is stored in the run, on its way to the waits index). */
async function waiting(runId: string, name: string): Promise<void> {
  await eventually(async () => ((await stepOf(runId, name))?.status === "Waiting" ? true : undefined), 15_000, `step ${name} of ${runId} waiting`);
}

/** Waits until the run has its wait rows in D1 (the outbox delivered them). */
async function indexed(runId: string, count = 1): Promise<void> {
  await eventually(async () => {
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM waits WHERE run_id = ?1").bind(runId).first<{ n: number }>();
    return (row?.n ?? 0) >= count ? true : undefined;
  }, 15_000, `wait rows of ${runId}`);
}

async function finished(runId: string, timeoutMs = 15_000): Promise<RunJson> {
  return eventually(async () => {
    const run = await getRun(runId);
    return ["Completed", "Failed", "Cancelled"].includes(run.status) ? run : undefined;
  }, timeoutMs, `the end of run ${runId}`);
}

describe("step.waitForEvent", () => {
  it("resumes on the event that matches by `match`, and not on one for another user", async () => {
    const userId = uniqueKey("user");
    const [eventId] = await sendEvents({ name: "test/signup", data: { userId } });
    const runId = await runIdOf(eventId!);
    await waiting(runId, "activation");
    await indexed(runId);
    await sendEvents({ name: "test/activated", data: { userId: `${userId}-other`, n: 0 } });
    await sendEvents({ name: "test/activated", data: { userId, n: 1 } });
    const run = await finished(runId);
    expect(run).toMatchObject({ status: "Completed", output: { activated: { userId, n: 1 } } });
    expect(await effectCount(`${userId}:after`)).toBe(1);
  });

  it("returns null at the timeout", async () => {
    const userId = uniqueKey("user");
    const [eventId] = await sendEvents({ name: "test/signup", data: { userId, timeout: "1s" } });
    const run = (await finishedRuns(eventId!)).get("waits-match")!;
    expect(run).toMatchObject({ status: "Completed", output: { activated: null } });
  });

  it("resumes once when two matching events arrive", async () => {
    const userId = uniqueKey("user");
    const [eventId] = await sendEvents({ name: "test/signup", data: { userId } });
    const runId = await runIdOf(eventId!);
    await waiting(runId, "activation");
    await indexed(runId);
    await sendEvents([
      { name: "test/activated", data: { userId, n: 1 } },
      { name: "test/activated", data: { userId, n: 2 } },
    ]);
    const run = await finished(runId);
    expect(run.status).toBe("Completed");
    expect([1, 2]).toContain((run.output as { activated: { n: number } }).activated.n);
    expect(await effectCount(`${userId}:after`)).toBe(1);
    // The waits index holds nothing of the run any more.
    await eventually(async () => ((await env.DB.prepare("SELECT COUNT(*) AS n FROM waits WHERE run_id = ?1").bind(runId).first<{ n: number }>())?.n === 0 ? true : undefined));
  });

  it("is not resumed by a matching event that came before the wait began, without lookback", async () => {
    const userId = uniqueKey("user");
    await sendEvents({ name: "test/activated", data: { userId, n: 0 } });
    const [eventId] = await sendEvents({ name: "test/signup", data: { userId, timeout: "2s" } });
    const run = (await finishedRuns(eventId!)).get("waits-match")!;
    expect(run.output).toEqual({ activated: null });
  });

  it("counts an event that came up to `lookback` before the wait began", async () => {
    const key = uniqueKey("reply");
    await sendEvents({ name: "test/reply", data: { key, answer: 42 } });
    const [eventId] = await sendEvents({ name: "test/ask", data: { key } });
    const run = (await finishedRuns(eventId!)).get("waits-lookback")!;
    expect(run).toMatchObject({ status: "Completed", output: { key, answer: 42 } });
  });

  it("matches by an `if` expression that is not a plain equality", async () => {
    const orderId = uniqueKey("order");
    const [eventId] = await sendEvents({ name: "test/order", data: { orderId, min: 10 } });
    const runId = await runIdOf(eventId!);
    await waiting(runId, "approval");
    await indexed(runId);
    await sendEvents({ name: "test/approved", data: { orderId, amount: 5 } });
    await sendEvents({ name: "test/approved", data: { orderId: `${orderId}-x`, amount: 50 } });
    await sendEvents({ name: "test/approved", data: { orderId, amount: 12 } });
    expect(await finished(runId)).toMatchObject({ status: "Completed", output: { orderId, amount: 12 } });
  });

  it("keeps an event that arrives while the run is busy running another step, and resumes after it", async () => {
    const key = uniqueKey("busy");
    const [eventId] = await sendEvents({ name: "test/busy", data: { key } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await effectCount(`${key}:slow-started`)) === 1 ? true : undefined));
    await indexed(runId);
    await sendEvents({ name: "test/busy.reply", data: { key, ok: true } });
    expect(await finished(runId)).toMatchObject({ status: "Completed", output: { key, ok: true } });
    expect(await effectCount(`${key}:slow-started`)).toBe(1);
  });

  it("mode any: resumes on the first of several events and says which", async () => {
    const key = uniqueKey("any");
    const [eventId] = await sendEvents({ name: "test/any", data: { key } });
    const runId = await runIdOf(eventId!);
    await waiting(runId, "first");
    await indexed(runId, 2);
    await sendEvents({ name: "test/any.b", data: { key } });
    expect(await finished(runId)).toMatchObject({ status: "Completed", output: { name: "test/any.b", data: { key } } });
  });

  it("mode all: resumes once every event has arrived, each with its own condition", async () => {
    const key = uniqueKey("all");
    const [eventId] = await sendEvents({ name: "test/all", data: { key } });
    const runId = await runIdOf(eventId!);
    await waiting(runId, "both");
    await indexed(runId, 2);
    await sendEvents({ name: "test/all.b", data: { key, ok: false } });
    await sendEvents({ name: "test/all.a", data: { key } });
    // Still waiting: b came only with ok = false.
    expect((await stepOf(runId, "both"))?.status).toBe("Waiting");
    await sendEvents({ name: "test/all.b", data: { key, ok: true } });
    expect(await finished(runId)).toMatchObject({ status: "Completed", output: ["test/all.a", "test/all.b"] });
  });

  it("resolves 200 open waits of one event name, one event each, reading only the matching rows", async () => {
    const prefix = uniqueKey("many");
    const ids = await sendEvents(Array.from({ length: 200 }, (_, i) => ({ name: "test/signup", data: { userId: `${prefix}-${i}` } })));
    // Every run's wait is in the index (one query, not 200 pollers).
    const runIds = await eventually(async () => {
      const { results } = await env.DB.prepare(
        "SELECT runs.id, runs.event_id, COUNT(waits.id) AS n FROM runs LEFT JOIN waits ON waits.run_id = runs.id WHERE runs.event_id IN (SELECT value FROM json_each(?1)) GROUP BY runs.id",
      )
        .bind(JSON.stringify(ids))
        .all<{ id: string; event_id: string; n: number }>();
      if (results.length < ids.length || results.some((row) => row.n === 0)) return undefined;
      const byEvent = new Map(results.map((row) => [row.event_id, row.id]));
      return ids.map((id) => byEvent.get(id)!);
    }, 60_000, "200 waits in the index");

    // The lookup an event makes reads its own wait's row, not the 200 others.
    const probe = { id: "probe", name: "test/activated", data: { userId: `${prefix}-7` }, ts: Date.now() };
    const lookup = await findWaitsStatement(env.DB, probe.name, eventMatchKeys(probe)!, Date.now()).all();
    expect(lookup.results).toHaveLength(1);
    // D1 counts the probe's few keys (json_each) and the index entries it visits: a handful, not the 200 waits.
    expect(lookup.meta.rows_read).toBeLessThan(20);

    await sendEvents(Array.from({ length: 200 }, (_, i) => ({ name: "test/activated", data: { userId: `${prefix}-${i}`, n: i } })));
    // Watch the runs index (one query), then read each run's output once.
    await eventually(async () => {
      const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM runs WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'Completed'")
        .bind(JSON.stringify(runIds))
        .first<{ n: number }>();
      return row?.n === runIds.length ? true : undefined;
    }, 60_000, "200 runs completed");
    for (const [i, runId] of runIds.entries()) expect((await getRun(runId)).output).toEqual({ activated: { userId: `${prefix}-${i}`, n: i } });
  }, 90_000);
});

describe("step.invoke", () => {
  it("starts the child, returns its output, and links parent and child", async () => {
    const key = uniqueKey("invoke");
    const [eventId] = await sendEvents({ name: "test/invoke", data: { key, n: 21 } });
    const parent = (await finishedRuns(eventId!)).get("invoke-parent")!;
    expect(parent).toMatchObject({ status: "Completed", output: { result: { doubled: 42 } } });
    const detail = (await (await request(`/v1/runs/${parent.run_id}`)).json()) as { data: { children: { run_id: string; function_id: string }[] } };
    expect(detail.data.children).toHaveLength(1);
    const child = await getRun(detail.data.children[0]!.run_id);
    expect(child).toMatchObject({ function_id: "invoke-child", status: "Completed", parent_run_id: parent.run_id, output: { doubled: 42 } });
    expect(await effectCount(`${key}:child`)).toBe(1);
  });

  it("throws a failing child's error into the parent, which catches it", async () => {
    const key = uniqueKey("invoke");
    const [eventId] = await sendEvents({ name: "test/invoke", data: { key, n: 1, fail: true } });
    const parent = (await finishedRuns(eventId!)).get("invoke-parent")!;
    expect(parent).toMatchObject({ status: "Completed", output: { caught: "NonRetriableError: the child fails" } });
  });

  it("starts one child when the parent is retried after the invoke", async () => {
    const key = uniqueKey("invoke-flaky");
    const [eventId] = await sendEvents({ name: "test/invoke-flaky", data: { key } });
    const parent = (await finishedRuns(eventId!)).get("invoke-then-flaky")!;
    expect(parent).toMatchObject({ status: "Completed", output: { doubled: 10 } });
    expect(await effectCount(`${key}:child`)).toBe(1);
    const detail = (await (await request(`/v1/runs/${parent.run_id}`)).json()) as { data: { children: unknown[] } };
    expect(detail.data.children).toHaveLength(1);
  });

  it("throws at its timeout", async () => {
    const key = uniqueKey("invoke");
    const [eventId] = await sendEvents({ name: "test/invoke", data: { key, n: 1, sleep: "1h", timeout: "1s" } });
    const parent = (await finishedRuns(eventId!)).get("invoke-parent")!;
    expect(parent.output).toMatchObject({ caught: expect.stringMatching(/^InngestInvokeTimeoutError/) });
  });

  it("fails the step for a function that is not registered", async () => {
    const [eventId] = await sendEvents({ name: "test/invoke-unknown", data: {} });
    const run = (await finishedRuns(eventId!)).get("invoke-unknown")!;
    expect(run.status).toBe("Failed");
    expect(run.error?.message).toMatch(/no-such-function/);
  });
});

describe("cancelOn and onCancel", () => {
  for (const mode of ["sleep", "wait", "step"] as const) {
    it(`cancels a run by a matching event during a ${mode}, runs onCancel, and runs no later step`, async () => {
      const key = uniqueKey(`cancel-${mode}`);
      const [eventId] = await sendEvents({ name: "test/cancel-on.start", data: { key, mode } });
      const runId = await runIdOf(eventId!);
      await eventually(async () => ((await effectCount(`${key}:${mode === "step" ? "slow-started" : "first"}`)) === 1 ? true : undefined));
      await indexed(runId);
      await sendEvents({ name: "test/cancel", data: { key: `${key}-other` } });
      await sendEvents({ name: "test/cancel", data: { key } });
      const run = await finished(runId);
      expect(run.status).toBe("Cancelled");
      await eventually(async () => ((await effectCount(`${key}:onCancel:event`)) === 1 ? true : undefined));
      expect(await effectCount(`${key}:last`)).toBe(0);
      if (mode === "step") {
        // The step that was running finished, and its result was discarded.
        expect((await getRun(runId)).steps?.find((step) => step.name === "slow")).toBeUndefined();
      }
    });
  }

  it("cancels a run by a matching event sent in the same request as its trigger", async () => {
    const key = uniqueKey("cancel-with-trigger");
    const [eventId] = await sendEvents([
      { name: "test/cancel-on.start", data: { key, mode: "sleep" } },
      { name: "test/cancel", data: { key } },
    ]);
    const run = await finished(await runIdOf(eventId!));
    expect(run.status).toBe("Cancelled");
    expect(await effectCount(`${key}:last`)).toBe(0);
  });

  it("sends inngest/function.cancelled for a run cancelled through the API", async () => {
    const key = uniqueKey("cancel-api");
    const [eventId] = await sendEvents({ name: "test/cancel-on.start", data: { key } });
    const runId = await runIdOf(eventId!);
    await eventually(async () => ((await effectCount(`${key}:first`)) === 1 ? true : undefined));
    expect((await request(`/v1/runs/${runId}`, { method: "DELETE" })).status).toBe(200);
    const cancelled = (await finishedRuns(engineEventId(runId, "cancelled"))).get("cancel-on-cancel")!;
    expect(cancelled.status).toBe("Completed");
    expect(await effectCount(`${key}:onCancel:api`)).toBe(1);
  });
});

describe("timeouts", () => {
  it("finish: cancels a run that has not ended within it", async () => {
    const key = uniqueKey("finish");
    const [eventId] = await sendEvents({ name: "test/timeouts.finish", data: { key } });
    const run = (await finishedRuns(eventId!)).get("timeouts-finish")!;
    expect(run.status).toBe("Cancelled");
    expect(await effectCount(`${key}:first`)).toBe(1);
    expect(await effectCount(`${key}:last`)).toBe(0);
  });

  it("start: cancels a run dispatched later than it after its event, before any step", async () => {
    const key = uniqueKey("start");
    const event = { id: uniqueKey("late"), name: "test/timeouts.start", data: { key }, ts: Date.now() - 5000 };
    // Dispatched 5 s after the event was accepted (a queue backlog, or the sweep after an outage).
    const [entry] = await dispatchEvent(env, { event, receivedAt: Date.now() - 5000 });
    expect(entry).toMatchObject({ status: "Cancelled" });
    expect(await effectCount(`${key}:work`)).toBe(0);
  });
});

describe("bulk cancellation", () => {
  /** The statuses, in the runs index, of the runs these events started. */
  async function statuses(eventIds: string[]): Promise<Map<string, string>> {
    const { results } = await env.DB.prepare("SELECT event_id, status FROM runs WHERE event_id IN (SELECT value FROM json_each(?1))")
      .bind(JSON.stringify(eventIds))
      .all<{ event_id: string; status: string }>();
    return new Map(results.map((row) => [row.event_id, row.status]));
  }

  async function cancelled(id: string) {
    return eventually(async () => {
      const body = (await (await request(`/v1/cancellations/${id}`)).json()) as { data: { status: string; cancelled: number } };
      return body.data.status === "Done" ? body.data : undefined;
    }, 60_000, `cancellation ${id}`);
  }

  it("cancels the runs of a function in a time range, in pages of 100, those matching `if` only", async () => {
    const group = uniqueKey("bulk");
    const startedAfter = new Date(Date.now() - 1000).toISOString();
    const ids = await sendEvents(Array.from({ length: 150 }, (_, i) => ({ name: "test/bulk.sleep", data: { group, pick: i < 100 } })));
    await eventually(async () => ((await statuses(ids)).size === ids.length ? true : undefined), 60_000, "150 runs indexed");

    const response = await request("/v1/cancellations", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ function_id: "bulk-sleeper", started_after: startedAfter, started_before: new Date(Date.now() + 1000).toISOString(), if: `event.data.group == "${group}" && event.data.pick == true` }),
    });
    expect(response.status).toBe(201);
    const { data } = (await response.json()) as { data: { id: string; status: string } };
    expect(await cancelled(data.id)).toMatchObject({ status: "Done", cancelled: 100 });
    const byEvent = await eventually(async () => {
      const found = await statuses(ids);
      return [...found.values()].filter((status) => status === "Cancelled").length === 100 ? found : undefined;
    }, 60_000, "100 cancelled in the index");
    ids.forEach((id, i) => expect(byEvent.get(id)).toBe(i < 100 ? "Cancelled" : "Running"));

    // The rest, by function and time alone (other tests' sleepers in the range go too).
    const rest = await request("/v1/cancellations", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ function_id: "bulk-sleeper", started_after: startedAfter }) });
    const second = (await rest.json()) as { data: { id: string } };
    expect((await cancelled(second.data.id)).cancelled).toBeGreaterThanOrEqual(50);
  }, 120_000);

  it("refuses a bad request with a 4xx that says what is wrong", async () => {
    const post = (body: unknown) => request("/v1/cancellations", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(await (await post({ started_before: "2026-01-01T00:00:00Z" })).json()).toMatchObject({ error: expect.stringMatching(/function_id/) });
    expect((await post({ function_id: "nope" })).status).toBe(404);
    const badIf = await post({ function_id: "bulk-sleeper", if: "event.data ==" });
    expect(badIf.status).toBe(400);
    expect(((await badIf.json()) as { error: string }).error).toMatch(/invalid expression/);
    expect((await post({ function_id: "bulk-sleeper", started_after: "yesterday" })).status).toBe(400);
    expect((await request("/v1/cancellations/unknown")).status).toBe(404);
  });
});

describe("delayed runs", () => {
  it("keeps a run months ahead Queued, with its alarm at the event's ts", async () => {
    const at = Date.now() + 180 * 24 * 3_600_000;
    const [eventId] = await sendEvents({ name: "test/delayed.target", data: { key: uniqueKey("far") }, ts: at });
    const runId = await runIdOf(eventId!);
    expect((await getRun(runId)).status).toBe("Queued");
    const alarm = await runInDurableObject(env.RUNS.get(env.RUNS.idFromName(runId)), (_, state) => state.storage.getAlarm());
    expect(alarm).toBe(at);
  });

  it("delays the run of an event a step sends with a future ts", async () => {
    const key = uniqueKey("later");
    // Far enough ahead that the sender's run has sent it before then, even on a busy machine.
    const at = Date.now() + 4000;
    const [eventId] = await sendEvents({ name: "test/sends-later", data: { key, at } });
    const sender = (await finishedRuns(eventId!)).get("sends-later")!;
    const sentId = (sender.output as { ids: string[] }).ids[0]!;
    const [queued] = await eventually(async () => {
      const list = await runsOf(sentId);
      return list.length === 1 ? list : undefined;
    });
    expect(queued!.status).toBe("Queued");
    const target = (await finishedRuns(sentId)).get("delayed-target")!;
    expect(target.output).toEqual({ key });
    expect(Date.parse(target.ended_at!)).toBeGreaterThanOrEqual(at);
  });
});

describe("runs list", () => {
  it("shows the waiting step's timeout", async () => {
    const userId = uniqueKey("user");
    const [eventId] = await sendEvents({ name: "test/signup", data: { userId } });
    const [run] = await eventually(async () => {
      const list = await runsOf(eventId!);
      return list.length === 1 ? list : undefined;
    });
    await waiting(run!.run_id, "activation");
    const step = (await getRun(run!.run_id)).steps!.find((s) => s.name === "activation") as unknown as { wake_at: string };
    expect(Date.parse(step.wake_at)).toBeGreaterThan(Date.now() + 50 * 60_000);
  });
});
