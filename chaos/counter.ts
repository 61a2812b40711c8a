// What every function of the chaos Worker shares: the app they belong to, and how a step body
// reports each execution to the runner's counter (a Node HTTP server on 127.0.0.1, its URL in
// `event.data.counter`) BEFORE returning, so the counter sees each execution, including one whose
// result the run never stored because the process died.
import { Stepflare } from "../sdk/index.ts";
import type { HandlerContext } from "../sdk/index.ts";

export const app = new Stepflare({ id: "chaos" });

/** What every chaos event carries: where the counter is, and the id of the event the runner sent. */
export interface ChaosData {
  counter: string;
  /** The id of the event the runner sent: side effects of every run it leads to are counted under it. */
  root: string;
  [key: string]: unknown;
}

/**
 * Tells the counter that the body of step `step` of function `fn` runs (attempt `attempt`) for
 * `root`, in the run `run` (its event's id and the run's id: a run started by `invoke` or a cron
 * is found by the run id). `fn` may carry a suffix (`chaos-chain@1`) when one scenario runs a
 * function more than once. `aim` marks a hit the runner may aim a kill at (it kills just after the
 * counter answers). Throws if the counter does not answer 2xx, so a lost hit fails the step
 * instead of going unseen.
 */
export async function hit(data: Pick<ChaosData, "counter" | "root">, fn: string, step: string, attempt: number, run: Run, aim = false): Promise<void> {
  const res = await fetch(`${data.counter}/hit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ root: data.root, key: `${fn}/${step}#${attempt}`, event: run.event.id, run: run.runId, ...(aim ? { aim: true } : {}) }),
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`counter answered ${res.status}`);
}

export type Ctx = HandlerContext<ChaosData>;
/** What identifies the run a step body runs in. */
export type Run = { event: { id: string }; runId: string };

/**
 * A counted step: reports its execution (with the step's attempt: a body a kill cut runs again at
 * the next attempt), then answers `value()`. `label` is the step's stored name (`p:1` for a repeat).
 */
export function counted<T>(ctx: Ctx, fn: string, id: string, label: string, value: () => T, aim = false): Promise<T> {
  return ctx.step.run(id, async () => {
    await hit(ctx.event.data, fn, label, ctx.attempt, ctx, aim);
    return value();
  }) as Promise<T>;
}
