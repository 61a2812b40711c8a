// The Stepflare Worker `npm run bench` measures: a user's entry of the documented shape whose
// functions report to the bench's counter (a Node HTTP server on 127.0.0.1, its URL in
// `event.data.counter`). Each run's last step calls the counter, so the bench sees completion
// exactly without polling; bench/cfwf/worker.ts holds the same work as Cloudflare Workflows.
import { Stepflare } from "../../sdk/index.ts";
import { serve } from "../../worker/index.ts";

export * from "../../worker/index.ts";

const app = new Stepflare({ id: "bench" });

/** What every benchmark event carries: where the counter is, which measurement, which run. */
interface BenchData {
  counter: string;
  tag: string;
  i: number;
  steps?: number;
}

/** Tells the counter that run `key` (by default `data.i`) of measurement `tag` got here; `extra` carries timings. */
async function hit(data: BenchData, extra: Record<string, number> = {}, key: string | number = data.i): Promise<void> {
  const res = await fetch(`${data.counter}/hit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tag: data.tag, key, ...extra }),
  });
  if (!res.ok) throw new Error(`counter answered ${res.status}`);
  await res.arrayBuffer();
}

/** Scenario 1: one step that calls the counter. */
const oneStep = app.createFunction<BenchData>({ id: "bench-one-step" }, { event: "bench/one-step" }, async ({ event, step }) => {
  await step.run("count", async () => {
    await hit(event.data);
    return "counted";
  });
  return { i: event.data.i };
});

/** Scenarios 2 and 3: `data.steps` sequential steps; the last one calls the counter. */
const nSteps = app.createFunction<BenchData>({ id: "bench-n-steps" }, { event: "bench/n-steps" }, async ({ event, step }) => {
  const steps = event.data.steps ?? 1;
  let sum = 0;
  for (let n = 0; n < steps; n++) {
    sum += await step.run(`s${n}`, async () => {
      if (n === steps - 1) await hit(event.data);
      return n;
    });
  }
  return { steps, sum };
});

/** Scenario 4: the first step reports the time it ran (the bench subtracts the time it sent the event). */
const firstStep = app.createFunction<BenchData>({ id: "bench-first-step" }, { event: "bench/first-step" }, async ({ event, step }) => {
  await step.run("first", async () => {
    await hit(event.data, { t: Date.now() });
    return "first";
  });
  return { i: event.data.i };
});

/**
 * Scenario 5: plans its wake-up 1 s ahead (a memoized step), sleeps until then, and reports how late
 * it resumed: now − planned wake time. Measured against the instant the run asked to wake, like the
 * floor's alarm, so the time between steps before the sleep does not count as lateness.
 */
const sleeper = app.createFunction<BenchData>({ id: "bench-sleeper" }, { event: "bench/sleeper" }, async ({ event, step }) => {
  const wakeAt = await step.run("plan", () => Date.now() + 1000);
  await step.sleepUntil("nap", wakeAt);
  const lateness = await step.run("report", async () => {
    const late = Date.now() - wakeAt;
    await hit(event.data, { lateness: late });
    return late;
  });
  return { lateness };
});

/**
 * Scenario 5b: `step.sleep("1s")` after a first step that records its time; reports now − (that time
 * + 1 s), so the time from the first step to the sleep call counts too.
 */
const sleepFromStart = app.createFunction<BenchData>({ id: "bench-sleep-from-start" }, { event: "bench/sleep-from-start" }, async ({ event, step }) => {
  const start = await step.run("start", () => Date.now());
  await step.sleep("nap", "1s");
  const lateness = await step.run("report", async () => {
    const late = Date.now() - (start + 1000);
    await hit(event.data, { lateness: late });
    return late;
  });
  return { lateness };
});

/**
 * Scenario 6: what each ingested event starts, a run with no step that tells the counter its event
 * id, so the bench knows exactly which accepted events started their run.
 */
const ingestNoop = app.createFunction<BenchData>({ id: "bench-ingest-noop" }, { event: "bench/ingest" }, async ({ event }) => {
  await hit(event.data, {}, event.id);
  return "ok";
});

export default serve({ client: app, functions: [oneStep, nSteps, firstStep, sleeper, sleepFromStart, ingestNoop] });
