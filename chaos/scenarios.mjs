// The chaos scenarios: one row per kind of work `npm run chaos` starts, kills and checks.
// New kinds of work add rows here, and functions to chaos/index.ts.
//
// A row:
// - `name`: the row's name in reports.
// - `event`: the event name the runner sends (with an explicit id, the row's "root").
// - `weight`: how often the row is picked relative to the others.
// - `data(i, rng, root)`: the event's data (the runner adds `counter` and `root`). `rng.int(n)` is 0..n-1.
// - `events(data, root, found, seen)`: every event the root leads to, the root first, each with the
//   runs it must have: `{ id, runs: [{ fn, label?, status, output?, error?, steps? }] }`. `found`
//   maps a function id to its run (as `GET /v1/events/:id/runs` answers it) among the events
//   listed before, so a later event's id may depend on an earlier run (`stepflare:<run_id>-failed`, or the id
//   the engine derives for an event `step.sendEvent` sent without one). `seen.last(key)` is the
//   highest attempt at which the step body `key` ran (from the counter), for outputs that embed
//   the attempt. `output` is compared deeply, `error` is a substring of the error message, `steps`
//   the stored step names; `label` is the function part of the run's counter keys (default `fn`).
// - `effects(data)`: every step body the row runs, by the key it reports to the counter
//   (`<label>/<step>`; chaos/index.ts adds `#<attempt>`), each with how many of its attempts fail by
//   design before the one that ends it (a RetryAfterError; 0 for most). So a body runs at attempts
//   0..n: n is that number plus one per kill that cut it (a body cut by a kill fails that attempt
//   with a RuntimeDiedError and runs again at the next one, after the retry backoff); a kill must
//   lie between an execution and the next, and nothing runs again without one (run.mjs checks it).
//   `null`: a step that may not run (a cancelled run's). `"buffered"`: a step under buffered
//   checkpoints, which a kill before its result was written makes run again at the same attempt (each
//   run after the first needs a kill since the one before). `effects(data, found)` gets the runs found
//   (by function id, as `events` does) at the check.
// - `followUps(data, rng)`: events the runner sends after the trigger (`[{ suffix, event, data }]`,
//   each with the id `<root>-<suffix>`): a wait's replies, a cancel. Each is checked as an event of
//   its own that starts no run (`followUpScenario`).
// - `failedSteps` on a run: stored steps that may have failed (a failure the handler caught).
// - `forbidSteps` on a run: stored steps it must not have (a cancelled run's steps after the cancel);
//   `quietAfterEnd`: no step body of the run may begin after it ended (a cancelled run's).
// - `invokable`: the row's event leads to one run and nothing else, so the runner also starts that
//   run through the service binding's `invoke(functionId, data)` with the row's data, and checks it
//   like the event's run (the run's function is the first run's `fn`).
//
// `cronScenario` is the cron function's row: a run for every minute, checked by scheduled time.
// `remoteScenarios` are the rows of the remote app's functions (chaos/app.mjs, on the `inngest` SDK),
// with `remoteSteps` in place of counted effects.

import { createHash } from "node:crypto";
import { ulid } from "ulidx";

/** @typedef {{ int: (n: number) => number }} Rng */

/**
 * The id the engine gives an event that `step.sendEvent` sends without one (sdk/step.ts): `stepflare:step-`
 * and the first 16 bytes of sha256(`<runId>\n<step name>\n<position>`) as hex, where the step name is the id as
 * written with `:n` for repeats, and position is the event's index in that call's list.
 */
export function derivedEventId(runId, stepName, position) {
  return `stepflare:step-${createHash("sha256").update(`${runId}\n${stepName}\n${position}`).digest("hex").slice(0, 32)}`;
}

/**
 * What a `chaos/derived` run sends (chaos/index.ts): round 0 sends [no id, `<root>-x`, no id] with
 * `emit`, each later round one event without an id with `emit:<round>`. Answers [{ id, slot }].
 */
function derivedSends(d, root, runId) {
  const sends = [
    { id: derivedEventId(runId, "emit", 0), slot: 0 },
    { id: `${root}-x`, slot: 1 },
    { id: derivedEventId(runId, "emit", 2), slot: 2 },
  ];
  for (let round = 1; round < d.rounds; round++) sends.push({ id: derivedEventId(runId, `emit:${round}`, 0), slot: round + 2 });
  return sends;
}

/**
 * A run's id as the engine derives it (worker/platform/runId.ts; chaos/scenarios.test.ts keeps the two
 * equal): the ULID of `at` whose random part is the first 10 bytes of sha256(`<function>\n<event id>\n<time>`).
 */
export function runIdFor(functionId, eventId, at) {
  const bits = BigInt(`0x${createHash("sha256").update(`${functionId}\n${eventId}\n${at}`).digest("hex").slice(0, 20)}`);
  const groups = Array.from({ length: 16 }, (_, i) => Number((bits >> BigInt(75 - 5 * i)) & 31n));
  // ulidx draws the random part's 16 characters last to first, each as floor(prng() * 32).
  let drawn = 0;
  return ulid(at, () => (groups[15 - drawn++] + 0.5) / 32);
}

/** `name`, then `name:1`, `name:2`…: the stored names of a step id called `count` times. */
const repeated = (name, count) => Array.from({ length: count }, (_, i) => (i === 0 ? name : `${name}:${i}`));

/**
 * A row whose function `fn` collects its root's event before its run starts (a debounce, a batch):
 * one run, whose one step `got` saw exactly `[root]` in `events`.
 */
const collectedRow = (name, event, fn) => ({
  name,
  event,
  weight: 1,
  data: () => ({}),
  events: (_d, root) => [{ id: root, runs: [{ fn, status: "Completed", output: { got: [root] }, steps: ["got"] }] }],
  effects: () => ({ [`${fn}/got`]: 0 }),
});

export const scenarios = [
  {
    name: "steps and a sleep",
    invokable: true,
    event: "chaos/steps",
    weight: 3,
    data: (i, rng) => ({ n: i, sleepMs: 1000 + rng.int(2001) }),
    events: (d, root) => [
      {
        id: root,
        runs: [{ fn: "chaos-steps", status: "Completed", output: { a: 2 * d.n, b: 2 * d.n + 1, c: 4 * d.n + 1 }, steps: ["a", "nap", "b", "c"] }],
      },
    ],
    effects: () => ({ "chaos-steps/a": 0, "chaos-steps/b": 0, "chaos-steps/c": 0 }),
  },
  {
    name: "buffered checkpoints",
    event: "chaos/buffered",
    weight: 2,
    data: (i) => ({ n: i }),
    events: (d, root) => [{ id: root, runs: [{ fn: "chaos-buffered", status: "Completed", output: { sum: 6 * d.n }, steps: ["a", "b", "c", "d", "e", "f"] }] }],
    // "buffered": a step that may run again at the same attempt, each time after a kill (run.mjs checks it).
    effects: () => Object.fromEntries(["a", "b", "c", "d", "e", "f"].map((name) => [`chaos-buffered/${name}`, "buffered"])),
  },
  {
    name: "a step that fails its first attempts",
    invokable: true,
    event: "chaos/retry",
    weight: 2,
    data: (_i, rng) => ({ failures: 1 + rng.int(2), retryMs: 300 + rng.int(700) }),
    events: (d, root, _found, seen) => [
      {
        id: root,
        runs: [
          {
            fn: "chaos-retry",
            status: "Completed",
            // The attempt that succeeded: `failures`, or later if a kill cut an attempt from there on.
            output: { flaky: `ok at attempt ${seen.last("chaos-retry/flaky") ?? d.failures}`, after: "after" },
            steps: ["flaky", "after"],
          },
        ],
      },
    ],
    effects: (d) => ({ "chaos-retry/flaky": d.failures, "chaos-retry/after": 0 }),
  },
  {
    name: "an error outside steps retries the handler",
    invokable: true,
    event: "chaos/handler-retry",
    weight: 1,
    data: (_i, rng) => ({ retryMs: 300 + rng.int(700) }),
    // A kill never counts as a failure of the handler's code outside steps: the attempt stays 1.
    events: (_d, root) => [{ id: root, runs: [{ fn: "chaos-handler-retry", status: "Completed", output: { once: "stored", attempt: 1 }, steps: ["once"] }] }],
    effects: () => ({ "chaos-handler-retry/once": 0 }),
  },
  {
    name: "a sendEvent chain",
    event: "chaos/chain",
    weight: 2,
    data: (_i, rng) => ({ hop: 0, hops: 1 + rng.int(2), napMs: 300 + rng.int(1201) }),
    events: (d, root) =>
      Array.from({ length: d.hops + 1 }, (_, hop) => ({
        id: hop === 0 ? root : `${root}-h${hop}`,
        runs: [
          {
            fn: "chaos-chain",
            label: `chaos-chain@${hop}`,
            status: "Completed",
            output: { hop, work: hop * 10, sent: hop < d.hops ? [`${root}-h${hop + 1}`] : [] },
            steps: hop < d.hops ? ["work", "nap", "next"] : ["work"],
          },
        ],
      })),
    effects: (d) => Object.fromEntries(Array.from({ length: d.hops + 1 }, (_, hop) => [`chaos-chain@${hop}/work`, 0])),
  },
  {
    name: "sendEvent without ids: the ids the engine derives",
    event: "chaos/derived",
    weight: 2,
    data: (_i, rng) => ({ rounds: 2 + rng.int(2), gapMs: 500 + rng.int(1501) }),
    events: (d, root, found) => {
      // The derived ids depend on the run id: known once the root's runs are listed.
      const runId = found["chaos-derived"]?.run_id;
      const sends = derivedSends(d, root, runId ?? "unknown");
      return [
        {
          id: root,
          runs: [
            {
              fn: "chaos-derived",
              status: "Completed",
              ...(runId ? { output: { rounds: d.rounds, sent: sends.map((s) => s.id) } } : {}),
              steps: [...repeated("work", d.rounds), ...repeated("emit", d.rounds), ...repeated("gap", d.rounds - 1)],
            },
          ],
        },
        ...(runId
          ? sends.map(({ id, slot }) => ({
              id,
              runs: [{ fn: "chaos-derived-child", label: `chaos-derived-child@${slot}`, status: "Completed", output: { slot }, steps: ["got"] }],
            }))
          : []),
      ];
    },
    effects: (d) => ({
      ...Object.fromEntries(repeated("chaos-derived/work", d.rounds).map((key) => [key, 0])),
      ...Object.fromEntries(Array.from({ length: d.rounds + 2 }, (_, slot) => [`chaos-derived-child@${slot}/got`, 0])),
    }),
  },
  {
    name: "fan-out: two functions on one event",
    event: "chaos/fanout",
    weight: 2,
    data: (i) => ({ n: i }),
    events: (d, root) => [
      {
        id: root,
        runs: [
          { fn: "chaos-fan-a", status: "Completed", output: { a2: `a:${d.n}!` }, steps: ["a", "pause", "a2"] },
          { fn: "chaos-fan-b", status: "Completed", output: { b2: `b:${d.n}?` }, steps: ["b", "b2"] },
        ],
      },
    ],
    effects: () => ({ "chaos-fan-a/a": 0, "chaos-fan-a/a2": 0, "chaos-fan-b/b": 0, "chaos-fan-b/b2": 0 }),
  },
  {
    name: "parallel steps and sleeps",
    invokable: true,
    event: "chaos/parallel",
    weight: 2,
    data: (_i, rng) => ({ sleepMs: 1000 + rng.int(2001) }),
    events: (_d, root) => [
      {
        id: root,
        runs: [{ fn: "chaos-parallel", status: "Completed", output: { squares: [0, 1, 4], sum: 5 }, steps: ["p", "p:1", "p:2", "s1", "s2", "sum"] }],
      },
    ],
    effects: () => ({ "chaos-parallel/p": 0, "chaos-parallel/p:1": 0, "chaos-parallel/p:2": 0, "chaos-parallel/sum": 0 }),
  },
  {
    name: "fails for good, then onFailure",
    event: "chaos/fails",
    weight: 1,
    data: (_i, rng) => ({ sleepMs: 500 + rng.int(2001) }),
    events: (_d, root, found) => [
      { id: root, runs: [{ fn: "chaos-fails", status: "Failed", error: "doomed on purpose", steps: ["wait", "doomed"] }] },
      ...(found["chaos-fails"]
        ? [
            {
              id: `stepflare:${found["chaos-fails"].run_id}-failed`,
              runs: [{ fn: "chaos-fails-failure", status: "Completed", output: { failedRun: found["chaos-fails"].run_id }, steps: ["notify"] }],
            },
          ]
        : []),
    ],
    // The doomed step throws NonRetriableError: its first attempt that runs to the end fails the run.
    effects: () => ({ "chaos-fails/doomed": 0, "chaos-fails-failure/notify": 0 }),
  },
  {
    name: "waitForEvent resumed by a reply",
    event: "chaos/wait",
    weight: 2,
    data: (i, _rng, root) => ({ key: root, v: `v${i}` }),
    // The replies (`chaos/reply`, matched on `data.key`): one, sometimes two with ids of their own
    // and the same payload; the runner sends them at seeded places around the trigger (one may go
    // out before it: the wait's look back finds it) and some after the kills.
    followUps: (d, rng) => Array.from({ length: rng.next() < 0.3 ? 2 : 1 }, (_, n) => ({ suffix: `reply${n}`, event: "chaos/reply", data: { key: d.key, v: d.v } })),
    events: (d, root) => [
      { id: root, runs: [{ fn: "chaos-wait", status: "Completed", output: { before: "before", reply: d.v }, steps: ["before", "reply", "after"] }] },
    ],
    effects: () => ({ "chaos-wait/before": 0, "chaos-wait/after": 0 }),
  },
  {
    name: "cancelOn: a sleeping run cancelled by an event",
    event: "chaos/cancellable",
    weight: 2,
    data: (_i, rng, root) => ({ key: root, cancel: rng.next() < 0.7, sleepMs: 8000 + rng.int(4001) }),
    // A cancel event (`chaos/cancel`, matched on `data.key`) for most: the runner sends it soon after
    // the trigger, well before the sleep ends, unless the trigger had to be sent again.
    followUps: (d) => (d.cancel ? [{ suffix: "cancel", event: "chaos/cancel", data: { key: d.key } }] : []),
    // Cancelled: a cancel that came while the run was under way (steps a and nap, never b). Completed:
    // no cancel, or one that came before the run existed (it matches only runs already started).
    // A cancelled run sends `inngest/function.cancelled` (id `stepflare:<run id>-cancelled`), which starts no run here.
    events: (d, root, found) => {
      const cancelled = d.cancel && found["chaos-cancel"]?.status === "Cancelled";
      return [
        {
          id: root,
          runs: [
            cancelled
              ? { fn: "chaos-cancel", status: "Cancelled", forbidSteps: ["b"], quietAfterEnd: true }
              : { fn: "chaos-cancel", status: "Completed", output: { a: "a", b: "b" }, steps: ["a", "nap", "b"] },
          ],
        },
        ...(cancelled ? [{ id: `stepflare:${found["chaos-cancel"].run_id}-cancelled`, runs: [] }] : []),
      ];
    },
    // A cancelled run may not have run a or b (`null`: a step that may not run); b may have begun
    // only if a cancel the kills delayed came while it ran: no body may begin after the run ended
    // (`quietAfterEnd`), and b's result is never stored (`forbidSteps`).
    effects: (d, found) => (d.cancel && found?.["chaos-cancel"]?.status === "Cancelled" ? { "chaos-cancel/a": null, "chaos-cancel/b": null } : { "chaos-cancel/a": 0, "chaos-cancel/b": 0 }),
  },
  {
    name: "concurrency: 3",
    invokable: true,
    event: "chaos/limited",
    weight: 2,
    data: (_i, rng) => ({ workMs: 1000 + rng.int(1001) }),
    events: (_d, root) => [{ id: root, runs: [{ fn: "chaos-limited", status: "Completed", output: { worked: "worked", done: "done" }, steps: ["work", "done"] }] }],
    effects: () => ({ "chaos-limited/work": 0, "chaos-limited/done": 0 }),
  },
  // Collected per root, started from the coordinator's alarm 1.5 s later: a kill in that window
  // must neither lose the collection nor start its run twice (the run id derives from its first event).
  collectedRow("debounce (events: all)", "chaos/debounced", "chaos-debounce"),
  collectedRow("batchEvents", "chaos/batched", "chaos-batch"),
];

/**
 * The functions of the remote app (chaos/app.mjs, on the `inngest` SDK, ids `chaos-app-<id>`), one
 * row each. Their step bodies record their executions in the runner, not at the counter, so
 * `effects` is empty and `remoteSteps` names the bodies `checkRemoteSteps` holds against the kills.
 * The runner sends `REMOTE_RUNS` of these (short 10, full 30) spread through the kills.
 */
export const remoteScenarios = [
  {
    name: "a remote function: steps and a sleep",
    event: "chaos/remote-steps",
    data: (i, rng) => ({ n: i, sleepMs: 1000 + rng.int(2001) }),
    events: (d, root) => [
      { id: root, runs: [{ fn: "chaos-app-steps", status: "Completed", output: { a: 2 * d.n, b: 2 * d.n + 1, c: 4 * d.n + 1 }, steps: ["a", "nap", "b", "c"] }] },
    ],
    effects: () => ({}),
    remoteSteps: ["a", "b", "c"],
  },
  {
    name: "a remote function: a step, then two in parallel",
    event: "chaos/remote-parallel",
    data: (i) => ({ n: i }),
    events: (d, root) => [{ id: root, runs: [{ fn: "chaos-app-parallel", status: "Completed", output: { x: `x${d.n}`, p: `x${d.n}p`, q: `x${d.n}q` }, steps: ["x", "p", "q"] }] }],
    effects: () => ({}),
    remoteSteps: ["x", "p", "q"],
  },
];

/**
 * The row of an event the runner sends after another row's trigger (a reply, a cancel): it starts
 * no run itself, and is checked as an event the log holds once.
 */
export function followUpScenario(event) {
  return { name: `follow-up ${event}`, event, weight: 0, data: () => ({}), events: (_d, root) => [{ id: root, runs: [] }], effects: () => ({}) };
}

/**
 * The cron function `chaos-cron` (chaos/index.ts, `* * * * *`): the Scheduler starts one run per
 * minute, whose run id derives from (function, cron, scheduled time), and whose step reports to the
 * counter under the root `cron@<scheduled time>`.
 */
export const cronScenario = {
  name: "a cron due every minute",
  fn: "chaos-cron",
  cron: "* * * * *",
  root: (at) => `cron@${new Date(at).toISOString()}`,
  runId: (at) => runIdFor("chaos-cron", "stepflare:cron * * * * *", at),
  run: (at) => ({ fn: "chaos-cron", status: "Completed", output: { scheduledAt: new Date(at).toISOString() }, steps: ["tick"] }),
  effects: () => ({ "chaos-cron/tick": 0 }),
};

/** How many runs a row's event leads to (its `events` with every dependent event known). */
export function runsOf(scenario, data) {
  const stub = new Proxy({}, { get: () => ({ run_id: "x" }) });
  return scenario.events(data, "root", stub, { last: () => undefined }).reduce((n, e) => n + e.runs.length, 0);
}
