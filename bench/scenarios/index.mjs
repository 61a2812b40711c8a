// The scenarios `npm run bench` runs, in the order it runs them: one entry per scenario, each written
// in the module of its family beside this one (steps, latency, ingest, waits, flowControl, remote, traces),
// so later work adds a scenario there and its entry here.
//
// A scenario has:
//   id, name          a stable id (rows in latest.json are named after `name`)
//   params, warmup    the sizes of a measured round and of the warm-up round
//   metrics           what one round of a system answers: [{ key, label, unit, better }]
//   systems           { stepflare?, workflows?, floor? }: async (ctx, params) => { [metric key]: number }
//   targets           the targets: [{ text, check(value) → boolean | null }], where
//                     value(scenarioId, metricKey, system) is the median over the rounds
//   rounds            optional, defaults to 3 (the systems take turns in rotating order)
//   ratios            optional, ratios to print and record beside the table: [{ text, value(value) → number }]
//
// A warm-up round gets the warm-up params with `warmup: true` added.
//
// ctx (bench/run.mjs) gives: sf and cf (bench/lib/clients.mjs), counter (bench/lib/counter.mjs),
// tag() (a fresh measurement id), now() (ms, Node clock), expectHits(tag, count, timeoutMs),
// expectRuns(ids, check) and expectInstances(workflow, ids, check) (verified after all timing),
// ingest(params) (scenario 6, bench/lib/ingest.mjs), note(text) and problem(text), and state, an
// object that lives for the whole bench (scenario 9's background waits), sfMemoryMb() (the
// resident memory of the Stepflare wrangler dev's processes, in MB, or null), and
// startStepflare(name, vars) (a second Stepflare wrangler dev with those vars: { url, client }).
import { fiveSteps, longRun, oneStep, parallelSteps, twentySteps, twentyStepsBuffered } from "./steps.mjs";
import { firstStep, invoke, sleepFromStart, sleepLateness } from "./latency.mjs";
import { ingest, load } from "./ingest.mjs";
import { waitResume10, waitResume10k } from "./waits.mjs";
import { concurrency, throttle } from "./flowControl.mjs";
import { remoteSteps } from "./remote.mjs";
import { tracesDown } from "./traces.mjs";
import { largeStep, largeStepSmall } from "./largeValues.mjs";

export const scenarios = [
  oneStep,
  parallelSteps,
  fiveSteps,
  twentySteps,
  twentyStepsBuffered,
  longRun,
  firstStep,
  sleepLateness,
  sleepFromStart,
  ingest,
  invoke,
  waitResume10,
  waitResume10k,
  concurrency,
  throttle,
  remoteSteps,
  tracesDown,
  largeStep,
  largeStepSmall,
  load,
];
