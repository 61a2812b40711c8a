// Settling: polling the REST API until every event has its runs in a final state, and then the
// invoked runs and the cron's minutes (or a deadline).
import { cronScenario } from "../scenarios.mjs";
import { FINAL, log, POLL_MS, sleep } from "../lib/context.mjs";
import { getJson, invocationRunIds, pool, seenFor } from "./common.mjs";

/**
 * Walks the events an instance leads to; answers { settled, events: [{ id, expected, status, runs }] }.
 * Settled: every expected event has at least its expected number of runs, all in a final state.
 * Each event's expectation is the row's answer once the runs before it are known (an output may
 * name ids derived from a run id).
 */
export async function observe(instance) {
  const found = {};
  const events = [];
  let settled = true;
  const seen = seenFor(instance.root);
  let listed = instance.scenario.events(instance.data, instance.root, found, seen);
  for (let i = 0; i < listed.length; i++) {
    const { id } = listed[i];
    const { status, body } = await getJson(`/v1/events/${encodeURIComponent(id)}/runs`);
    const runs = status === 200 ? body.data : [];
    for (const run of runs) found[run.function_id] ??= run;
    // A later event's id may depend on a run just found (`stepflare:<run_id>-failed`, a derived id).
    listed = instance.scenario.events(instance.data, instance.root, found, seen);
    const expected = listed[i];
    events.push({ id, expected, status, runs });
    if (status !== 200 || runs.length < expected.runs.length || !runs.every((r) => FINAL.has(r.status))) settled = false;
  }
  return { settled, events };
}

/** Polls until every instance's events settled, or `settleMs` passed: answers those still open. */
export async function settle(instances, settleMs) {
  const deadline = Date.now() + settleMs;
  let open = instances;
  while (open.length > 0 && Date.now() < deadline) {
    const results = await pool(open, 4, observe);
    open = open.filter((_, i) => !results[i].settled);
    if (open.length === 0) break;
    log(`settling: ${instances.length - open.length}/${instances.length} events settled (e.g. ${open.slice(0, 3).map((x) => x.root).join(", ")})`);
    await sleep(POLL_MS);
  }
  return open;
}

/**
 * Whether every run that `runIds` names is in a final state, as the REST API shows it (from the
 * runs index), or with `binding`, as the service binding's `getRun` does (from the run's object).
 */
async function runsFinal(runIds, binding = false) {
  for (const runId of runIds) {
    const { status, body } = await getJson(binding ? `/chaos/rpc/runs/${runId}` : `/v1/runs/${runId}`);
    if (status !== 200 || !FINAL.has(body.data?.status)) return false;
  }
  return true;
}

/**
 * After the events settled: waits (until `deadline`) for the runs of the invocations and of the
 * cron minutes to be over. Answers what is still not.
 */
export async function settleOthers(invocations, minutes, deadline) {
  let open = [
    ...invocations.map((invocation) => ({ what: invocation.root, runIds: () => invocationRunIds(invocation), binding: true })),
    ...minutes.map((t) => ({ what: cronScenario.root(t), runIds: () => [cronScenario.runId(t)], binding: false })),
  ];
  while (open.length > 0) {
    const done = await pool(open, 4, (item) => runsFinal(item.runIds(), item.binding));
    open = open.filter((_, i) => !done[i]);
    if (open.length === 0 || Date.now() > deadline) break;
    log(`settling: ${open.length} invoked or cron runs not over (e.g. ${open.slice(0, 3).map((o) => o.what).join(", ")})`);
    await sleep(POLL_MS);
  }
  return open.map((o) => o.what);
}
