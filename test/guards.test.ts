// The runaway guards (docs/production.md "Runaway guards"): the event chain's depth limit, a
// function's budget, the account's daily budget.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseEvents } from "../worker/ingest/ingest.ts";
import { findFunction } from "../worker/platform/registry.ts";
import { checkAccountBudget } from "../worker/schedule/accountBudget.ts";
import type { Env } from "../worker/platform/env.ts";
import { effectCount, eventually, getRun, request, sendEvents, uniqueKey } from "./helpers.ts";

interface FunctionJson {
  id: string;
  paused: boolean;
  pause_reason?: string;
  stats: { cost_usd: number };
}

async function functionView(id: string): Promise<FunctionJson> {
  const response = await request("/v1/functions");
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: FunctionJson[] }).data.find((fn) => fn.id === id)!;
}

/** The `stepflare/function.budget_exceeded` events in the log about `scope`'s `subject` (a function id, or "account"). */
async function budgetEvents(subject: string): Promise<{ id: string; data: Record<string, unknown> }[]> {
  const { results } = await env.DB.prepare("SELECT id, data FROM events WHERE name = 'stepflare/function.budget_exceeded'").all<{ id: string; data: string }>();
  return results
    .map((row) => ({ id: row.id, data: JSON.parse(row.data) as Record<string, unknown> }))
    .filter((event) => (subject === "account" ? event.data.scope === "account" : event.data.function_id === subject));
}

async function heldEvents(functionId: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM paused_events WHERE function_id = ?1").bind(functionId).first<{ n: number }>())!.n;
}

async function resume(functionId: string): Promise<void> {
  const response = await request(`/v1/functions/${functionId}/resume`, { method: "POST" });
  expect(response.status, await response.clone().text()).toBe(200);
}

describe("the event chain's depth limit", () => {
  it("stops a function that sends the event that triggers it at the limit, failing the step with an error naming the chain", async () => {
    const key = uniqueKey("loop");
    await sendEvents({ name: "guards/loop", data: { key } });
    // The run of the event from outside is at depth 0; the 33rd in a row (depth 32) may not send a 33rd event.
    const failed = await eventually(
      async () => {
        const row = await env.DB.prepare("SELECT key FROM test_effects WHERE key LIKE ?1").bind(`${key}:failed:%`).first<{ key: string }>();
        return row?.key;
      },
      60_000,
      "the failure of the run the limit stopped",
    );
    expect(await effectCount(`${key}:ran`)).toBe(33);
    const run = await getRun(failed.slice(`${key}:failed:`.length));
    expect(run.function_id).toBe("guard-loop");
    expect(run.status).toBe("Failed");
    expect(run.error?.message).toContain("step.sendEvent: event chain too deep: this would be 33 events in a row");
    expect(run.error?.message).toContain(`caused by function "guard-loop" (run ${run.run_id}); the limit is 32 (STEPFLARE_MAX_EVENT_DEPTH)`);
    // Only the one failure: no run past the limit started.
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM test_effects WHERE key LIKE ?1").bind(`${key}:failed:%`).first<{ n: number }>())!.n).toBe(1);
    expect(await effectCount(`${key}:ran`)).toBe(33);
  });

  it("fails an invoke past the limit: a function that invokes itself stops", async () => {
    const key = uniqueKey("recurse");
    const [eventId] = await sendEvents({ name: "guards/recurse", data: { key } });
    const top = await eventually(
      async () => {
        const row = await env.DB.prepare("SELECT id, status FROM runs WHERE event_id = ?1 AND function_id = 'guard-recurse'").bind(eventId).first<{ id: string; status: string }>();
        return row?.status === "Failed" ? row : undefined;
      },
      60_000,
      "the top run's failure",
    );
    expect(await effectCount(`${key}:ran`)).toBe(33);
    expect((await getRun(top.id)).error?.message).toContain("event chain too deep");
  });

  it("takes no depth from a sender", () => {
    const [event] = parseEvents({ name: "guards/loop", data: {}, depth: 31 });
    expect(event).not.toHaveProperty("depth");
  });
});

describe("a function's budget", () => {
  it("pauses a function with a budget of 5 runs an hour at the sixth, sends the event once, and holds its events until the resume", async () => {
    const key = uniqueKey("budget");
    await sendEvents(Array.from({ length: 6 }, (_, i) => ({ name: "guards/budget-runs", data: { key, i } })));
    await eventually(async () => ((await functionView("guard-budget-runs")).paused ? true : undefined), 15_000, "the budget's pause");
    await eventually(async () => ((await effectCount(`${key}:ran`)) === 5 && (await heldEvents("guard-budget-runs")) === 1 ? true : undefined), 15_000, "5 runs and 1 held event");
    const view = await functionView("guard-budget-runs");
    expect(view.pause_reason).toMatch(/^budget: 5 runs per 1h reached \(5 runs started since .+\); resume to start the events held meanwhile$/);
    // A seventh event is held too, and sends no second event.
    await sendEvents({ name: "guards/budget-runs", data: { key, i: 6 } });
    await eventually(async () => ((await heldEvents("guard-budget-runs")) === 2 ? true : undefined), 15_000, "the seventh event held");
    const sent = await budgetEvents("guard-budget-runs");
    expect(sent).toHaveLength(1);
    expect(sent[0]!.data).toMatchObject({ scope: "function", function_id: "guard-budget-runs", budget: { runs: 5, steps: null, period: "1h" }, used: { runs: 5, steps: 0 } });
    expect(await effectCount(`${key}:ran`)).toBe(5);

    // The resume counts the budget again: the held events run.
    await resume("guard-budget-runs");
    await eventually(async () => ((await effectCount(`${key}:ran`)) === 7 ? true : undefined), 15_000, "the held events' runs");
    expect((await functionView("guard-budget-runs")).paused).toBe(false);
    expect(await heldEvents("guard-budget-runs")).toBe(0);
  });

  it("pauses a function once its runs have taken its budget of steps", async () => {
    const key = uniqueKey("steps");
    for (const i of [1, 2]) {
      const [eventId] = await sendEvents({ name: "guards/budget-steps", data: { key, i } });
      // A run's steps count once its end is in the runs index.
      await eventually(async () => ((await env.DB.prepare("SELECT steps FROM runs WHERE event_id = ?1").bind(eventId).first<{ steps: number | null }>())?.steps === 2 ? true : undefined), 15_000, `run ${i}'s end`);
    }
    await sendEvents({ name: "guards/budget-steps", data: { key, i: 3 } });
    await eventually(async () => ((await heldEvents("guard-budget-steps")) === 1 ? true : undefined), 15_000, "the third event held");
    const view = await functionView("guard-budget-steps");
    expect(view.paused).toBe(true);
    expect(view.pause_reason).toContain("budget: 3 steps per 1d reached (2 runs started, 4 steps taken since");
    expect(await budgetEvents("guard-budget-steps")).toHaveLength(1);
    expect(await effectCount(`${key}:one`)).toBe(2);
    await resume("guard-budget-steps");
    await eventually(async () => ((await effectCount(`${key}:one`)) === 3 ? true : undefined), 15_000, "the held event's run");
  });
});

describe("the account's daily budget", () => {
  it("pauses every function once the last 24 hours' runs cost more than STEPFLARE_BUDGET_DAILY, and sends the event once a day", async () => {
    const key = uniqueKey("account");
    const [eventId] = await sendEvents({ name: "guards/account", data: { key } });
    const cost = await eventually(async () => (await env.DB.prepare("SELECT cost_usd FROM runs WHERE event_id = ?1").bind(eventId).first<{ cost_usd: number | null }>())?.cost_usd ?? undefined, 15_000, "the run's cost");
    // A 1-step run: 2 requests (its start, its deletion at retention), 3 rows and no alarm in its object, 4 D1 rows, 1 Workers request at list price.
    expect(cost).toBeCloseTo((2 * 0.15 + 3 + 4 + 0.3) / 1_000_000, 12);
    const fn = findFunction("guard-account")!;
    const now = Date.now();

    // Unset: nothing is read or paused. Under the budget: nothing is paused.
    expect(await checkAccountBudget(env as Env, now, [fn])).toBeNull();
    expect(await checkAccountBudget({ ...(env as Env), STEPFLARE_BUDGET_DAILY: "1000000" }, now, [fn])).toMatchObject({ paused: false, budgetUsd: 1_000_000 });
    expect((await functionView("guard-account")).paused).toBe(false);

    // Over it: every function given is paused, with the reason, and the day's event is sent.
    const over = { ...(env as Env), STEPFLARE_BUDGET_DAILY: "0.000001" };
    const check = await checkAccountBudget(over, now, [fn]);
    expect(check).toMatchObject({ paused: true, budgetUsd: 0.000001 });
    expect(check!.spentUsd).toBeGreaterThanOrEqual(cost);
    const view = await functionView("guard-account");
    expect(view.paused).toBe(true);
    expect(view.pause_reason).toMatch(/^account budget: \$[0-9.]+ spent in the last 24 hours, over STEPFLARE_BUDGET_DAILY \(\$0\.000001\)/);
    expect(await budgetEvents("account")).toMatchObject([{ data: { scope: "account", budget_usd: 0.000001, functions: ["guard-account"] } }]);

    // Its events are held; once resumed, the same day's check does not pause it again.
    await sendEvents({ name: "guards/account", data: { key } });
    await eventually(async () => ((await heldEvents("guard-account")) === 1 ? true : undefined), 15_000, "the event held");
    await resume("guard-account");
    expect(await checkAccountBudget(over, now, [fn])).toMatchObject({ paused: false });
    expect((await functionView("guard-account")).paused).toBe(false);
    expect(await budgetEvents("account")).toHaveLength(1);
    await eventually(async () => ((await effectCount(`${key}:ran`)) === 2 ? true : undefined), 15_000, "the held event's run");
  });
});
