// The chaos scenarios: one row per kind of work `npm run chaos` starts, kills and checks.
// Later work (waits, cron, flow control) adds rows here, and functions to chaos/index.ts.
//
// A row:
// - `name`: the row's name in reports.
// - `event`: the event name the runner sends (with an explicit id, the row's "root").
// - `weight`: how often the row is picked relative to the others.
// - `data(i, rng)`: the event's data (the runner adds `counter` and `root`). `rng.int(n)` is 0..n-1.
// - `events(data, root, found)`: every event the root leads to, the root first, each with the runs it
//   must have: `{ id, runs: [{ fn, status, output?, error?, steps? }] }`. `found` maps a function
//   id to its run (as `GET /v1/events/:id/runs` answers it) among the events listed before, so a
//   later event's id may depend on an earlier run (`<run_id>-failed`). `output` is compared deeply,
//   `error` is a substring of the error message, `steps` the stored step names in order.
// - `effects(data)`: how many times each step body must run, by the key the step reports to the
//   counter, `<function>/<step>#<attempt>` (chaos/index.ts). Without a crash each runs exactly that
//   many times; a step a crash cut mid-flight runs once more (twice in all), and only a second crash
//   cutting that re-run too allows a third execution: a kill must come between each and the next.

/** @typedef {{ int: (n: number) => number }} Rng */

export const scenarios = [
  {
    name: "steps and a sleep",
    event: "chaos/steps",
    weight: 3,
    data: (i, rng) => ({ n: i, sleepMs: 1000 + rng.int(2001) }),
    events: (d, root) => [
      {
        id: root,
        runs: [{ fn: "chaos-steps", status: "Completed", output: { a: 2 * d.n, b: 2 * d.n + 1, c: 4 * d.n + 1 }, steps: ["a", "nap", "b", "c"] }],
      },
    ],
    effects: () => ({ "chaos-steps/a#0": 1, "chaos-steps/b#0": 1, "chaos-steps/c#0": 1 }),
  },
  {
    name: "a step that fails its first attempts",
    event: "chaos/retry",
    weight: 2,
    data: (_i, rng) => ({ failures: 1 + rng.int(2), retryMs: 300 + rng.int(700) }),
    events: (d, root) => [
      {
        id: root,
        runs: [{ fn: "chaos-retry", status: "Completed", output: { flaky: `ok at attempt ${d.failures}`, after: "after" }, steps: ["flaky", "after"] }],
      },
    ],
    effects: (d) => {
      const effects = { "chaos-retry/after#0": 1 };
      for (let a = 0; a <= d.failures; a++) effects[`chaos-retry/flaky#${a}`] = 1;
      return effects;
    },
  },
  {
    name: "an error outside steps retries the handler",
    event: "chaos/handler-retry",
    weight: 1,
    data: (_i, rng) => ({ retryMs: 300 + rng.int(700) }),
    events: (_d, root) => [{ id: root, runs: [{ fn: "chaos-handler-retry", status: "Completed", output: { once: "stored", attempt: 1 }, steps: ["once"] }] }],
    effects: () => ({ "chaos-handler-retry/once#0": 1 }),
  },
  {
    name: "a sendEvent chain",
    event: "chaos/chain",
    weight: 2,
    data: (_i, rng) => ({ hop: 0, hops: 1 + rng.int(2) }),
    events: (d, root) =>
      Array.from({ length: d.hops + 1 }, (_, hop) => ({
        id: hop === 0 ? root : `${root}-h${hop}`,
        runs: [
          {
            fn: "chaos-chain",
            status: "Completed",
            output: { hop, work: hop * 10, sent: hop < d.hops ? [`${root}-h${hop + 1}`] : [] },
            steps: hop < d.hops ? ["work", "next"] : ["work"],
          },
        ],
      })),
    effects: (d) => Object.fromEntries(Array.from({ length: d.hops + 1 }, (_, hop) => [`chaos-chain@${hop}/work#0`, 1])),
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
    effects: () => ({ "chaos-fan-a/a#0": 1, "chaos-fan-a/a2#0": 1, "chaos-fan-b/b#0": 1, "chaos-fan-b/b2#0": 1 }),
  },
  {
    name: "parallel steps and sleeps",
    event: "chaos/parallel",
    weight: 2,
    data: (_i, rng) => ({ sleepMs: 1000 + rng.int(2001) }),
    events: (_d, root) => [
      {
        id: root,
        runs: [{ fn: "chaos-parallel", status: "Completed", output: { squares: [0, 1, 4], sum: 5 }, steps: ["p", "p:1", "p:2", "s1", "s2", "sum"] }],
      },
    ],
    effects: () => ({ "chaos-parallel/p#0": 1, "chaos-parallel/p:1#0": 1, "chaos-parallel/p:2#0": 1, "chaos-parallel/sum#0": 1 }),
  },
  {
    name: "fails for good, then onFailure",
    event: "chaos/fails",
    weight: 1,
    data: () => ({}),
    events: (_d, root, found) => [
      { id: root, runs: [{ fn: "chaos-fails", status: "Failed", error: "doomed on purpose", steps: ["doomed"] }] },
      ...(found["chaos-fails"]
        ? [
            {
              id: `${found["chaos-fails"].run_id}-failed`,
              runs: [{ fn: "chaos-fails-failure", status: "Completed", output: { failedRun: found["chaos-fails"].run_id }, steps: ["notify"] }],
            },
          ]
        : []),
    ],
    effects: () => ({ "chaos-fails/doomed#0": 1, "chaos-fails-failure/notify#0": 1 }),
  },
];

/** How many runs a row's event leads to (its `events` with every dependent event known). */
export function runsOf(scenario, data) {
  const stub = new Proxy({}, { get: () => ({ run_id: "x" }) });
  return scenario.events(data, "root", stub).reduce((n, e) => n + e.runs.length, 0);
}
