// The rows of flow control across features (chaos/flow.ts holds their functions): each event of a
// burst under one key, and of the pause, is an instance of its row, in the shape of
// chaos/scenarios.mjs's rows (see the top of that file).
import { runIdFor } from "./scenarios.mjs";

/**
 * The rows of flow control across features (lib/flow.mjs and lib/pause.mjs plan and send them, in
 * groups under one key, not picked by weight; verify/flow.mjs and verify/pause.mjs check what the
 * groups share). Each event is an instance of its row, checked like any row's; where what runs
 * depends on the whole group (a debounce's last event, a batch), the row expects the runs listed
 * for its own event (`found` holds them when its expectation is read), and the group's check
 * decides whether they are the right ones.
 */
export const flowScenarios = {
  // Concurrency 2 per burst (`data.key`): the runner cancels the runs marked `cancel` (most of them
  // waiting for a slot) with DELETE /v1/runs/:id; a cancelled run sends `inngest/function.cancelled`.
  queued: {
    name: "concurrency 2 per key, queued runs cancelled",
    event: "chaos/queued",
    events: (d, root, found) => {
      const run = found["chaos-queued"];
      const cancelled = d.cancel && run?.status === "Cancelled";
      return [
        {
          id: root,
          runs: [
            cancelled
              ? { fn: "chaos-queued", status: "Cancelled", forbidSteps: ["done"], quietAfterEnd: true }
              : { fn: "chaos-queued", status: "Completed", output: { worked: "worked", done: "done" }, steps: ["work", "done"] },
          ],
        },
        ...(cancelled ? [{ id: `stepflare:${run.run_id}-cancelled`, runs: [] }] : []),
      ];
    },
    effects: (d, found) => (d.cancel && found?.["chaos-queued"]?.status === "Cancelled" ? { "chaos-queued/work": null, "chaos-queued/done": null } : { "chaos-queued/work": 0, "chaos-queued/done": 0 }),
  },
  // Throttled to one start a second per burst (`data.key`): every run starts, spaced.
  throttled: {
    name: "throttle: one start a second per key",
    event: "chaos/throttled",
    events: (_d, root) => [{ id: root, runs: [{ fn: "chaos-throttled", status: "Completed", output: { got: root }, steps: ["got"] }] }],
    effects: () => ({ "chaos-throttled/got": 0 }),
  },
  // Debounced per burst (`data.key`), the last event handed: the run an event lists is the run it
  // was handed to (its event_id), so it saw exactly that event.
  debounce: {
    name: "debounce: a burst under one key",
    event: "chaos/debounce-burst",
    events: (_d, root, found) => [{ id: root, runs: found["chaos-debounce-burst"] ? [{ fn: "chaos-debounce-burst", status: "Completed", output: { got: [root] }, steps: ["got"] }] : [] }],
    effects: (_d, found) => (found?.["chaos-debounce-burst"] ? { "chaos-debounce-burst/got": 0 } : {}),
  },
  // Batched per burst (`data.key`), at most 3 a run: a run is listed by its first event, which its
  // step reports under; the events it got are checked against the run's in verify/flow.mjs.
  batch: {
    name: "batchEvents: a burst under one key",
    event: "chaos/batch-burst",
    events: (_d, root, found) => [{ id: root, runs: found["chaos-batch-burst"] ? [{ fn: "chaos-batch-burst", status: "Completed", steps: ["got"] }] : [] }],
    effects: (_d, found) => (found?.["chaos-batch-burst"] ? { "chaos-batch-burst/got": 0 } : {}),
  },
  // The function the runner pauses: sent before, during and after the pause (lib/pause.mjs).
  pausable: {
    name: "a paused function's event",
    event: "chaos/pausable",
    events: (_d, root) => [{ id: root, runs: [{ fn: "chaos-pausable", status: "Completed", output: { got: root }, steps: ["got"] }] }],
    effects: () => ({ "chaos-pausable/got": 0 }),
  },
  // step.invoke of the paused function: the child's output, or (while paused) the error caught,
  // checked against the pause in verify/pause.mjs. The child reports under the parent's root.
  invoker: {
    name: "step.invoke of the paused function",
    event: "chaos/invoker",
    events: (_d, root, found) => {
      const refused = found["chaos-invoker"]?.output?.refused !== undefined;
      return [
        {
          id: root,
          runs: [
            refused
              ? { fn: "chaos-invoker", status: "Completed", steps: ["call"], failedSteps: ["call"] }
              : { fn: "chaos-invoker", status: "Completed", output: { invoked: { got: root } }, steps: ["call"] },
          ],
        },
      ];
    },
    effects: (_d, found) => (found?.["chaos-invoker"]?.output?.refused !== undefined ? {} : { "chaos-pausable/got": 0 }),
  },
};

/**
 * The paused function's cron (`chaos-pausable`, `* * * * *`): like chaos-cron's, but its step reports
 * under `pcron@<scheduled time>`, and the minute it passes while paused is a Skipped run.
 */
export const pausableCron = {
  fn: "chaos-pausable",
  root: (at) => `pcron@${new Date(at).toISOString()}`,
  runId: (at) => runIdFor("chaos-pausable", "stepflare:cron * * * * *", at),
  run: (at) => ({ fn: "chaos-pausable", status: "Completed", output: { got: `pcron@${new Date(at).toISOString()}` }, steps: ["got"] }),
  effects: () => ({ "chaos-pausable/got": 0 }),
};
