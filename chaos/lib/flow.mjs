// Flow control across features: bursts of events under one key (a concurrency limit whose queued
// runs the runner cancels, a throttle, a debounce, a batch), planned from the seed and sent through
// the kills; and the read of the coordinators' state the checks use.
import { flowScenarios } from "../flowScenarios.mjs";
import { killTimes, outage, server, sleep } from "./context.mjs";
import { whenUp } from "./server.mjs";
import { sendBatch } from "./send.mjs";

// A group is the events of one burst, all under one key (`data.key`, the group's first root):
// - queued: 5 (short) or 6 events in one request, concurrency 2 per key, each step working
//   2.5–3.5 s; the runner cancels 2 of those that wait for a slot (and, now and then, one that
//   runs) as soon as their runs exist, with DELETE /v1/runs/:id (again until answered). It goes
//   out once the outage is over: DELETE reads the runs index, so during a D1 outage it would
//   only meet runs that had ended meanwhile;
// - throttled: 5 or 6 events in one request, one start a second per key;
// - debounce: 3–4 events, one request each, 150–350 ms after the one before was accepted, under a
//   debounce of 2 s: one run, with the last;
// - batch: 2–7 events in 1–3 requests back to back, batches of at most 3, timeout 2 s.
// Each group goes out at a seeded moment of the kill window (`slot`, 0..1), like the remote app's events.

/** The coordinator of `option` for `key` of `fn`, as the engine names it: `[functionId, option, key]`. */
export const coordinatorOf = (fn, option, key) => [fn, option, key];

/** The function, coordinator option and key of each kind of group. */
export const GROUP_FLOW = {
  queued: { fn: "chaos-queued", option: "concurrency:0", limit: 2 },
  throttled: { fn: "chaos-throttled", option: "throttle", periodMs: 1000 },
  debounce: { fn: "chaos-debounce-burst", option: "debounce", periodMs: 2000 },
  batch: { fn: "chaos-batch-burst", option: "batchEvents", maxSize: 3 },
};

/**
 * The groups of a run (short: one of each kind and a second debounce and batch; full: 3 queued,
 * 2 throttled, 5 debounces, 5 batches), from a generator of their own so that a seed gives the
 * same plan for the rest. Answers { groups, instances, runs }: `runs` is how many runs they lead
 * to when no burst is split (a cancelled run counted).
 */
export function planFlow(rng, counterUrl, short) {
  const counts = short ? { queued: 1, throttled: 1, debounce: 2, batch: 2 } : { queued: 3, throttled: 2, debounce: 5, batch: 5 };
  const groups = [];
  const instances = [];
  let runs = 0;
  let g = 0;
  for (const [kind, count] of Object.entries(counts)) {
    for (let n = 0; n < count; n++, g++) {
      const size = { queued: short ? 5 : 6, throttled: short ? 5 : 6, debounce: 3 + rng.int(2), batch: 2 + rng.int(6) }[kind];
      const key = `chaos-f${String(g).padStart(2, "0")}-${kind}`;
      const scenario = flowScenarios[kind];
      const members = Array.from({ length: size }, (_, pos) => {
        const root = `${key}-${pos}`;
        return { scenario, root, data: { key, pos, counter: counterUrl, root } };
      });
      if (kind === "queued") {
        // Two of those behind the first two (they wait for a slot), and now and then a running one.
        const behind = members.slice(2);
        for (let c = 0; c < 2; c++) behind.splice(rng.int(behind.length), 1)[0].data.cancel = true;
        if (rng.next() < 0.3) members[0].data.cancel = true;
        for (const m of members) {
          m.data.cancel ??= false;
          m.data.workMs = 2500 + rng.int(1001);
        }
      }
      // The requests: one for the bursts that go out at once, one an event for a debounce, 1–3 for a batch.
      let requests;
      if (kind === "debounce") requests = members.map((m) => [m]);
      else if (kind === "batch") {
        const cuts = new Set(Array.from({ length: rng.int(3) }, () => 1 + rng.int(size - 1)));
        requests = [];
        let from = 0;
        for (const cut of [...cuts].sort((a, b) => a - b).concat(size)) {
          if (cut > from) requests.push(members.slice(from, cut));
          from = cut;
        }
      } else requests = [members];
      const gapsMs = requests.map(() => (kind === "debounce" ? 150 + rng.int(201) : rng.int(100)));
      groups.push({ kind, key, ...GROUP_FLOW[kind], members, requests, gapsMs, slot: (g + rng.next()) / (Object.values(counts).reduce((a, b) => a + b, 0) + 1), sent: [] });
      instances.push(...members);
      runs += kind === "debounce" ? 1 : kind === "batch" ? Math.ceil(size / 3) : size;
    }
  }
  return { groups, instances, runs };
}

/**
 * Sends each group at its slot of `windowMs` from now (all that are left at once when `flush`
 * resolves): its requests in order, each again until accepted, then the next after its gap; then,
 * for a queued group, its cancels. Answers when every group is sent and cancelled.
 */
export async function sendFlowGroups(groups, windowMs, flush) {
  await Promise.all(
    groups.map(async (group) => {
      await Promise.race([sleep(group.slot * windowMs), flush]);
      while (group.kind === "queued" && outage.plan && outage.endedAt === null) await sleep(200);
      for (const [i, batch] of group.requests.entries()) {
        for (;;) {
          await whenUp();
          const sentAt = Date.now();
          if (await sendBatch(batch)) {
            group.sent.push({ sentAt, acceptedAt: Date.now(), ids: batch.map((m) => m.root) });
            break;
          }
          await sleep(outage.on ? 1_000 : 300);
        }
        await sleep(group.gapsMs[i]);
      }
      if (group.kind === "queued") await Promise.all(group.members.filter((m) => m.data.cancel).map((m) => cancelRun(group, m)));
    }),
  );
}

/** A fetch that answers { status, body } or null when cut (a kill, the server down). */
export async function tryJson(urlPath, init = {}) {
  try {
    const res = await fetch(`${server.baseUrl}${urlPath}`, { ...init, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = { text: text.slice(0, 200) };
    }
    return { status: res.status, body };
  } catch {
    return null;
  }
}

/** The state of the coordinators `names` (`[fn, option, key]` each) as POST /chaos/flow answers it, or null. */
export async function readCoordinators(names) {
  const answer = await tryJson("/chaos/flow", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(names) });
  return answer?.status === 200 ? answer.body.data : null;
}

/**
 * Whether a kill came (or, with `withOutage`, the outage was on) between `from` and `to`: a check
 * that needs neither is skipped then.
 */
export const disturbed = (from, to, withOutage = true) =>
  killTimes.some((k) => k >= from && k <= to) || (withOutage && (outage.on || (outage.startedAt !== null && outage.startedAt <= to && (outage.endedAt ?? Infinity) >= from)));

/**
 * Cancels `member`'s run as soon as it exists (DELETE /v1/runs/:id, again until answered 200; a run
 * not listed within 100 s, its event lost from the queue past the sweep, is not cancelled), and
 * then reads its coordinator: a run the DELETE answered Cancelled must be in no queue at once; if it
 * still holds a slot (a step body it began runs on), the slot must be back 2 s after that body ends.
 * What it saw goes to `member.cancel`.
 */
async function cancelRun(group, member) {
  // The sweep re-enqueues an event a kill lost from the queue 30–90 s later.
  const deadline = Date.now() + 100_000;
  const record = (member.cancel = { runId: null, seen: null, answer: null, waitingAfter: null, leaseAfter: null });
  for (;;) {
    await whenUp();
    const listed = await tryJson(`/v1/events/${encodeURIComponent(member.root)}/runs`);
    const run = listed?.status === 200 ? listed.body.data?.[0] : undefined;
    if (run) {
      Object.assign(record, { runId: run.run_id, seen: run.status });
      break;
    }
    if (Date.now() > deadline) return;
    await sleep(100);
  }
  for (;;) {
    if (Date.now() > deadline + 30_000) return;
    await whenUp();
    const sentAt = Date.now();
    const answer = await tryJson(`/v1/runs/${record.runId}`, { method: "DELETE" });
    if (answer?.status === 200) {
      record.answer = { status: answer.body.data?.status ?? null, steps: (answer.body.data?.steps ?? []).map((s) => s.name), sentAt, at: Date.now() };
      break;
    }
    await sleep(300);
  }
  if (record.answer.status !== "Cancelled") return;
  const name = coordinatorOf(group.fn, group.option, group.key);
  const state = (await readCoordinators([name]))?.[0];
  const readAt = Date.now();
  if (!state) return;
  record.waitingAfter = { held: state.waiting.some((w) => w.run_id === record.runId), checked: !disturbed(record.answer.sentAt, readAt) };
  if (!state.leases.some((l) => l.run_id === record.runId)) return (record.leaseAfter = { held: false });
  // It holds a slot: a step body it began before the cancel runs on (its result discarded). The
  // slot is back once that invocation ends: at the latest its body's end, plus room to give it back.
  await sleep(member.data.workMs + 2_000);
  const again = (await readCoordinators([name]))?.[0];
  const againAt = Date.now();
  if (again) record.leaseAfter = { held: again.leases.some((l) => l.run_id === record.runId), heldAtCancel: true, checked: !disturbed(record.answer.sentAt, againAt), afterMs: againAt - record.answer.at };
}
