// Functions of the runaway guards' tests (test/guards.test.ts).
import { env } from "cloudflare:workers";
import { referenceFunction, type Stepflare } from "../sdk/index.ts";

/** Records one side effect under `key`. */
async function effect(key: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(key).run();
}

export function guardFunctions(app: Stepflare) {
  /** Sends the event that triggers it: a loop the event chain's depth limit stops. Its failure records the failed run. */
  const loop = app.createFunction(
    {
      id: "guard-loop",
      retries: 0,
      onFailure: async ({ event, step }) => {
        await step.run("record", () => effect(`${(event.data.event.data as { key: string }).key}:failed:${event.data.run_id}`));
      },
    },
    { event: "guards/loop" },
    async ({ event, step }) => {
      await step.run("ran", () => effect(`${event.data.key}:ran`));
      await step.sendEvent("again", { name: "guards/loop", data: { key: event.data.key } });
    },
  );

  /** Invokes itself: each child one level deeper, until the limit fails the deepest invoke. */
  const recurse = app.createFunction({ id: "guard-recurse", retries: 0 }, { event: "guards/recurse" }, async ({ event, step }) => {
    await step.run("ran", () => effect(`${event.data.key}:ran`));
    return step.invoke("deeper", { function: referenceFunction({ functionId: "guard-recurse" }), data: { key: event.data.key } });
  });

  /** At most 5 runs an hour. */
  const budgetOfRuns = app.createFunction({ id: "guard-budget-runs", budget: { runs: 5, period: "1h" } }, { event: "guards/budget-runs" }, async ({ event }) => {
    await effect(`${event.data.key}:ran`);
  });

  /** At most 3 steps a day: two runs of two steps spend it. */
  const budgetOfSteps = app.createFunction({ id: "guard-budget-steps", budget: { steps: 3, period: "1d" } }, { event: "guards/budget-steps" }, async ({ event, step }) => {
    await step.run("one", () => effect(`${event.data.key}:one`));
    await step.run("two", () => effect(`${event.data.key}:two`));
  });

  /** The function the account-wide budget's test pauses. */
  const account = app.createFunction({ id: "guard-account" }, { event: "guards/account" }, async ({ event, step }) => {
    await step.run("ran", () => effect(`${event.data.key}:ran`));
  });

  return [loop, recurse, budgetOfRuns, budgetOfSteps, account];
}
