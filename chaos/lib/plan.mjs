// The plan: the seeded generator, and what the run sends: scenario instances in requests, the
// invocations among them, follow-ups, held-back instances, and the remote app's events.
import { followUpScenario, remoteScenarios, runsOf, scenarios } from "../scenarios.mjs";
import { killKind } from "./kills.mjs";

/** Of the requests that send events, the share that goes through the service binding's `send`. */
const RPC_SEND_SHARE = 0.25;

/** mulberry32: a small seeded generator, so a seed replays the same events, batches and kill delays. */
/** The events of the request sent while only the queue is down: more than the 10 a request dispatches itself. */
const SWEPT_BATCH = 12;

export function makeRng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), between: (lo, hi) => lo + next() * (hi - lo) };
}

// The plan: scenario instances until the target number of runs, sent in requests of 1–4 events,
// plus instances held back: one `chaos/derived` per kill aimed at a send (sent just before it), and
// a burst of one failing, one chain, one derived and one sleeping instance sent just before the
// outage, so that runs fail, send events and sleep while D1 or the Queue is down. The target number
// of runs, the kills and the invocations come from the command line.
export function plan(rng, counterUrl, withOutage, { targetRuns, kills, invokes }) {
  const totalWeight = scenarios.reduce((n, s) => n + s.weight, 0);
  const instances = [];
  let runs = 0;
  const make = (i, scenario) => {
    const root = `chaos-${String(i).padStart(3, "0")}-${scenario.event.split("/")[1]}`;
    const data = { ...scenario.data(i, rng, root), counter: counterUrl, root };
    runs += runsOf(scenario, data);
    const instance = { scenario, root, data };
    instances.push(instance);
    return instance;
  };
  // Every row at least once, then weighted picks.
  const main = [];
  let i = 0;
  for (; runs < targetRuns || i < scenarios.length; i++) {
    let scenario = scenarios[i];
    if (i >= scenarios.length) {
      let pick = rng.next() * totalWeight;
      scenario = scenarios.find((s) => (pick -= s.weight) < 0) ?? scenarios[0];
    }
    main.push(make(i, scenario));
  }
  for (let j = main.length - 1; j > 0; j--) {
    const k = rng.int(j + 1);
    [main[j], main[k]] = [main[k], main[j]];
  }
  // The concurrency: 3 runs go out together (at least 6 of them, in one request at a seeded place),
  // so that some wait for a slot, and slots are handed over across the kills.
  const limitedRow = scenarios.find((s) => s.event === "chaos/limited");
  const limitedBurst = main.filter((x) => x.scenario === limitedRow);
  while (limitedBurst.length < 6) limitedBurst.push(make(i++, limitedRow));
  main.splice(0, main.length, ...main.filter((x) => x.scenario !== limitedRow));
  // Requests: batches of events, a share of them through the service binding's `send`, and the
  // invocations (`invoke` through the binding) among them at seeded places.
  const requests = [];
  for (let j = 0; j < main.length; ) {
    const size = 1 + rng.int(4);
    requests.push({ batch: main.slice(j, j + size), via: rng.next() < RPC_SEND_SHARE ? "rpc" : "http" });
    j += size;
  }
  requests.splice(rng.int(requests.length + 1), 0, { batch: limitedBurst, via: "http" });
  const invokable = scenarios.filter((s) => s.invokable);
  const invocations = [];
  for (let n = 0; n < invokes; n++, i++) {
    const scenario = invokable[n % invokable.length];
    const root = `chaos-${String(i).padStart(3, "0")}-invoke-${scenario.event.split("/")[1]}`;
    const data = { ...scenario.data(i, rng), counter: counterUrl, root };
    const want = scenario.events(data, root, {}, { last: () => undefined })[0].runs[0];
    const invocation = { scenario, root, data, fn: want.fn, answer: null, sentAt: null };
    invocations.push(invocation);
    requests.splice(rng.int(requests.length + 1), 0, { invocation });
  }
  // Follow-ups (a wait's replies, a cancel): each in a request of its own, 1 before to 4 after its
  // trigger's request (a reply sent before its trigger is found by the wait's look back), or, for a
  // fifth of the replies, held back until the kills are over (`late`).
  const late = [];
  const followUps = [];
  for (const trigger of main) {
    for (const f of trigger.scenario.followUps?.(trigger.data, rng) ?? []) {
      const root = `${trigger.root}-${f.suffix}`;
      const instance = { scenario: followUpScenario(f.event), root, data: { ...f.data, counter: counterUrl, root }, trigger: trigger.root };
      instances.push(instance);
      if (f.event === "chaos/reply" && rng.next() < 0.2) {
        instance.late = true;
        late.push(instance);
        continue;
      }
      const at = requests.findIndex((r) => r.batch?.includes(trigger));
      const offset = f.event === "chaos/reply" ? rng.int(6) - 1 : 1 + rng.int(3);
      followUps.push({ at: Math.max(0, at + offset) + 0.5, request: { batch: [instance], via: rng.next() < RPC_SEND_SHARE ? "rpc" : "http" } });
    }
  }
  const placed = requests.map((request, n) => ({ at: n, request }));
  requests.splice(0, requests.length, ...[...placed, ...followUps].sort((x, y) => x.at - y.at).map((p) => p.request));
  const row = (event) => scenarios.find((s) => s.event === event);
  const aimed = [];
  for (let k = 1; k <= kills; k++) if (killKind(k) === "send") aimed.push(make(i++, row("chaos/derived")));
  const aimedBuffered = [];
  for (let k = 1; k <= kills; k++) if (killKind(k) === "buffered") aimedBuffered.push(make(i++, row("chaos/buffered")));
  const burst = withOutage ? ["chaos/fails", "chaos/chain", "chaos/derived", "chaos/steps"].map((event) => make(i++, row(event))) : [];
  // One request of more than 10 events, sent while only the queue is down (lib/outage.mjs): such a request's
  // events go through the queue, so they are stored and wait undispatched until the tick's sweep re-enqueues them.
  const swept = withOutage ? Array.from({ length: SWEPT_BATCH }, (_, n) => make(i++, row(n % 2 === 0 ? "chaos/steps" : "chaos/derived"))) : [];
  return { instances, requests, invocations, runs, aimed, aimedBuffered, burst, swept, late };
}

/**
 * The remote app's events: `remoteRuns` of them (every third the parallel function's), each with a
 * seeded moment in the kill window (`slot`, 0..1) and a way in (POST /e/chaos or the binding's
 * send). Drawn from a generator of their own, so a seed gives the same local plan, outage and kill
 * delays as before the remote runs came.
 */
export function planRemote(rng, remoteRuns) {
  return Array.from({ length: remoteRuns }, (_, j) => {
    const scenario = remoteScenarios[j % 3 === 2 ? 1 : 0];
    const root = `chaos-r${String(j).padStart(2, "0")}-${scenario.event.split("/")[1]}`;
    return { scenario, root, data: { ...scenario.data(j, rng), root }, slot: (j + rng.next()) / remoteRuns, via: rng.next() < RPC_SEND_SHARE ? "rpc" : "http" };
  });
}
