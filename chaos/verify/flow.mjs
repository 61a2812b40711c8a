// Flow control across features: what each group of lib/flow.mjs must show beyond its events' rows
// (a concurrency limit kept and its cancelled runs out of its queue, a throttle's starts spaced, a
// debounce's one run with the last event, a batch's events each in one run of at most 3), and the
// coordinators' tables once every run is over: no slot leased, no run waiting, no event collected.
import { isDeepStrictEqual } from "node:util";
import { FINAL, hits, killTimes, log, POLL_MS, server, sleep } from "../lib/context.mjs";
import { coordinatorOf, disturbed, readCoordinators } from "../lib/flow.mjs";
import { getJson, groupBy, issue, pool } from "./common.mjs";

/** The runs GET /v1/events/:id/runs lists for each member: root → runs. */
async function listRuns(members) {
  const lists = await pool(members, 4, async (m) => {
    const { status, body } = await getJson(`/v1/events/${encodeURIComponent(m.root)}/runs`);
    return status === 200 ? body.data : [];
  });
  return new Map(members.map((m, i) => [m.root, lists[i]]));
}

/** When each event was received and dispatched (POST /chaos/events, from D1): id → { received_at, dispatched_at }. */
export async function eventTimes(ids) {
  const res = await fetch(`${server.baseUrl}/chaos/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ids), signal: AbortSignal.timeout(15_000) });
  const body = await res.json();
  return new Map((body.data ?? []).map((row) => [row.id, row]));
}

/** A group's members in the order the engine sees them: received, then as sent. */
const inOrder = (members, times) => [...members].sort((a, b) => (times.get(a.root)?.received_at ?? 0) - (times.get(b.root)?.received_at ?? 0) || a.data.pos - b.data.pos);

/** The runs of a batch group, each with the events it got (GET /v1/runs/:id). */
async function batchRuns(group) {
  const listed = [...(await listRuns(group.members)).values()].flat();
  const unique = [...new Map(listed.map((r) => [r.run_id, r])).values()];
  return pool(unique, 4, async (run) => ({ ...run, detail: (await getJson(`/v1/runs/${run.run_id}`)).body.data }));
}

/**
 * Whether a group's collections are over: a debounce's last event, and every event of a batch, in
 * a run that ended (the other groups' runs are each event's own, which `settle` waits for).
 */
async function groupSettled(group) {
  if (group.kind === "debounce") {
    const times = await eventTimes(group.members.map((m) => m.root));
    const last = inOrder(group.members, times).at(-1);
    const runs = (await listRuns([last])).get(last.root);
    return runs.length > 0 && runs.every((r) => FINAL.has(r.status));
  }
  if (group.kind === "batch") {
    const runs = await batchRuns(group);
    const got = new Set(runs.flatMap((r) => r.detail?.events?.map((e) => e.id) ?? []));
    return runs.every((r) => FINAL.has(r.status)) && group.members.every((m) => got.has(m.root));
  }
  return true;
}

/**
 * Polls until every group's collections are over and each of `others` (a function answering
 * whether its part is over) says so, or `deadline`; answers what is still open.
 */
export async function settleFlow(groups, others, deadline) {
  let open = [...groups.map((group) => ({ what: group.key, done: () => groupSettled(group) })), ...others];
  while (open.length > 0) {
    const done = await pool(open, 2, (item) => item.done());
    open = open.filter((_, i) => !done[i]);
    if (open.length === 0 || Date.now() > deadline) break;
    log(`settling: ${open.length} flow groups or paused minutes not over (e.g. ${open.slice(0, 3).map((o) => o.what).join(", ")})`);
    await sleep(POLL_MS);
  }
  return open.map((o) => o.what);
}

/** The most windows open at one moment (a window counts from its hit + 150 ms, the counter's answer delay); answers [most, when]. */
function mostAtOnce(windows) {
  let most = 0;
  let at = null;
  for (const w of windows) {
    const from = w.from + 150;
    const n = windows.filter((o) => o.from + 150 <= from && o.to > from).length;
    if (n > most) [most, at] = [n, from];
  }
  return [most, at];
}

/** Concurrency 2 per key with cancels: what the DELETEs met, the coordinator right after, and the slots in use at once. */
function checkQueued(group, runs, out, stats) {
  const byRoot = new Map(group.members.map((m) => [m.root, m]));
  for (const m of group.members.filter((x) => x.data.cancel)) {
    const { answer, waitingAfter, leaseAfter, runId, seen } = m.cancel ?? {};
    const final = runs.get(m.root)?.[0]?.status;
    if (!runId) {
      // Never listed while the runner waited (its event came back late from the sweep): no cancel was made.
      stats.notCancelled++;
      continue;
    }
    stats.cancels++;
    if (!answer) {
      issue(out.problems, "wrong", m.root, { what: `the run ${runId} was to be cancelled, but DELETE /v1/runs/${runId} was never answered` });
      continue;
    }
    if (answer.status === "Cancelled" && final !== "Cancelled") issue(out.problems, "wrong", m.root, { what: `DELETE /v1/runs/${runId} answered Cancelled, but the run ended ${final}` });
    if (answer.status === "Cancelled" && seen === "Queued" && answer.steps.length === 0) stats.cancelledQueued++;
    else if (answer.status === "Cancelled") stats.cancelledRunning++;
    else stats.endedBeforeCancel++;
    if (waitingAfter?.held && waitingAfter.checked) issue(out.problems, "wrong", m.root, { what: `run ${runId} was still waiting in its concurrency queue (${JSON.stringify(group.key)}) after DELETE answered Cancelled` });
    if (leaseAfter?.held && leaseAfter.checked) issue(out.problems, "wrong", m.root, { what: `run ${runId} still held its concurrency slot (${JSON.stringify(group.key)}) ${leaseAfter.afterMs} ms after DELETE answered Cancelled, past the end of any step body it began` });
    if (waitingAfter && !waitingAfter.checked) stats.cancelChecksSkipped++;
  }
  // A work body is executing from its hit until `workMs` later, or until a kill ends it.
  const windows = hits
    .filter((h) => h.step === "chaos-queued/work" && byRoot.has(h.root))
    .map((h) => {
      const end = h.at + byRoot.get(h.root).data.workMs;
      const kill = killTimes.find((t) => t >= h.at);
      return { from: h.at, to: kill !== undefined && kill < end ? kill : end };
    });
  const [most, at] = mostAtOnce(windows);
  stats.queuedMaxAtOnce = Math.max(stats.queuedMaxAtOnce, most);
  if (most > group.limit) issue(out.problems, "wrong", `${group.key}@${new Date(at).toISOString()}`, { what: `${most} chaos-queued work bodies of key ${group.key} executing at once (concurrency: ${group.limit} per key)` });
}

/** One start a second per key: each run's first body, spaced from the one before unless a kill or the outage came between. */
function checkThrottled(group, out, stats) {
  const roots = new Set(group.members.map((m) => m.root));
  const firsts = [...groupBy(hits.filter((h) => h.step === "chaos-throttled/got" && roots.has(h.root)), (h) => h.run).values()].map((list) => Math.min(...list.map((h) => h.at))).sort((a, b) => a - b);
  for (let i = 1; i < firsts.length; i++) {
    const gap = firsts[i] - firsts[i - 1];
    // A run told its turn before a kill may begin its body after the restart, next to the one after
    // it. The outage does not: a throttle's turns live in its coordinator, not in D1 or the Queue.
    if (disturbed(firsts[i - 1] - group.periodMs, firsts[i], false)) continue;
    stats.throttleMinGapMs = Math.min(stats.throttleMinGapMs, gap);
    // The counter sees a body a little after its start; 500 ms is room for that, far from a burst let through.
    if (gap < group.periodMs - 500) issue(out.problems, "wrong", group.key, { what: `two throttled runs of key ${group.key} began ${gap} ms apart (throttle: one start per ${group.periodMs} ms)` });
  }
  stats.throttledRuns += firsts.length;
}

/**
 * A debounce of 2 s: the burst's last event (received last) is handed to one run; any other run
 * handed an event of the burst is a split, allowed only if the burst's next event was dispatched
 * a period after that one (a kill, the outage or the sweep held it back).
 */
function checkDebounce(group, runs, times, out, stats) {
  const order = inOrder(group.members, times);
  const last = order.at(-1);
  const handed = order.filter((m) => (runs.get(m.root) ?? []).length > 0);
  stats.debounceGroups++;
  stats.debounceEvents += order.length;
  stats.debounceRuns += handed.length;
  if (!handed.includes(last)) issue(out.problems, "lost", last.root, { what: `the debounce of key ${group.key} started no run with its last event ${last.root} (runs with ${handed.map((m) => m.root).join(", ") || "none"})` });
  for (const m of handed) {
    if (m === last) continue;
    const at = times.get(m.root)?.dispatched_at;
    const later = order.slice(order.indexOf(m) + 1).map((x) => times.get(x.root)?.dispatched_at).filter((t) => t != null);
    const next = later.length ? Math.min(...later) : null;
    if (at == null || next == null) continue;
    if (next - at < group.periodMs - 500) {
      issue(out.problems, "duplicated", m.root, { what: `the debounce of key ${group.key} started a run with ${m.root}, though the burst's next event was dispatched ${next - at} ms after it (period ${group.periodMs} ms)` });
    } else stats.debounceSplits++;
  }
}

/** A batch of at most 3: every event of the burst in exactly one run, each run at most 3 of the burst's events, its step saw them. */
function checkBatch(group, runs, out, stats) {
  const roots = new Set(group.members.map((m) => m.root));
  const count = new Map(group.members.map((m) => [m.root, []]));
  stats.batchGroups++;
  stats.batchEvents += group.members.length;
  for (const run of runs) {
    const ids = run.detail?.events?.map((e) => e.id) ?? [];
    stats.batchRuns++;
    stats.batchSizes.push(ids.length);
    if (ids.length > group.maxSize) issue(out.problems, "wrong", group.key, { what: `batch run ${run.run_id} got ${ids.length} events (maxSize ${group.maxSize})` });
    const strangers = ids.filter((id) => !roots.has(id));
    if (strangers.length) issue(out.problems, "wrong", group.key, { what: `batch run ${run.run_id} of key ${group.key} got events of another key: ${strangers.join(", ")}` });
    if (run.status === "Completed" && !isDeepStrictEqual(run.detail?.output, { got: ids })) issue(out.problems, "wrong", group.key, { what: `batch run ${run.run_id} output ${JSON.stringify(run.detail?.output)}, but its events are ${JSON.stringify(ids)}` });
    for (const id of ids) count.get(id)?.push(run.run_id);
  }
  for (const [root, inRuns] of count) {
    if (inRuns.length === 0) issue(out.problems, "lost", root, { what: `event ${root} of the batch ${group.key} is in no run` });
    if (inRuns.length > 1) issue(out.problems, "duplicated", root, { what: `event ${root} of the batch ${group.key} is in ${inRuns.length} runs: ${inRuns.join(", ")}` });
  }
}

/**
 * The coordinators once every run is over: none leases a slot or queues a run (a run that ended
 * gives back both at once), none holds a collected event (every one started its run). `names`:
 * the groups' coordinators and the other rows' (chaos-limited's, chaos-debounce's and chaos-batch's per root).
 */
async function checkCoordinators(names, out, stats) {
  const states = await readCoordinators(names);
  if (!states) return issue(out.problems, "wrong", "-", { what: "could not read the flow coordinators (POST /chaos/flow)" });
  stats.coordinators = states.length;
  for (const state of states) {
    const name = JSON.stringify(state.name);
    if (state.leases.length) issue(out.problems, "wrong", name, { what: `coordinator ${name} still leases a slot to ${state.leases.map((l) => `${l.run_id} (expires ${new Date(l.expires_at).toISOString()})`).join(", ")} though every run is over` });
    if (state.waiting.length) issue(out.problems, "wrong", name, { what: `coordinator ${name} still queues ${state.waiting.map((w) => w.run_id).join(", ")} though every run is over` });
    if (state.pending.length) issue(out.problems, "lost", name, { what: `coordinator ${name} still holds collected events ${state.pending.map((p) => p.id).join(", ")} that started no run` });
  }
}

/** Every check of the flow groups (after the runs settled, before the server stops); answers the stats the report prints. */
export async function checkFlow(groups, otherCoordinators, out) {
  const stats = {
    cancels: 0, notCancelled: 0, cancelledQueued: 0, cancelledRunning: 0, endedBeforeCancel: 0, cancelChecksSkipped: 0, queuedRuns: 0, queuedMaxAtOnce: 0,
    throttledRuns: 0, throttleMinGapMs: Infinity,
    debounceGroups: 0, debounceEvents: 0, debounceRuns: 0, debounceSplits: 0,
    batchGroups: 0, batchEvents: 0, batchRuns: 0, batchSizes: [], coordinators: 0,
  };
  const times = await eventTimes(groups.flatMap((g) => g.members.map((m) => m.root)));
  for (const group of groups) {
    if (group.kind === "batch") {
      checkBatch(group, await batchRuns(group), out, stats);
      continue;
    }
    const runs = await listRuns(group.members);
    if (group.kind === "queued") {
      stats.queuedRuns += group.members.length;
      checkQueued(group, runs, out, stats);
    } else if (group.kind === "throttled") checkThrottled(group, out, stats);
    else checkDebounce(group, runs, times, out, stats);
  }
  await checkCoordinators([...groups.map((g) => coordinatorOf(g.fn, g.option, g.key)), ...otherCoordinators], out, stats);
  return stats;
}
