// The outage: its seeded plan, the dev server's fault switch, and the phase in which D1 and/or the
// Queue are down.
import { accepted, log, outage, sendStats, server, sleep } from "./context.mjs";
import { sendBatch, sendUntilAccepted } from "./send.mjs";

// The outage: the dev server's fault switch (`POST /v1/dev/faults`, dev mode only) makes every D1
// call and/or every Queue send fail while it is on. It lives in the server's memory, so a kill
// would end it: no kill comes while it is on.

/**
 * Draws the outage (which bindings go down, after which kill, the lead, the length within
 * `durationRange`) and, unless `mode` is "off", plans it, with the bindings `mode` names if any.
 */
export function planOutage(rng, mode, kills, durationRange) {
  const downs = [["d1"], ["queue"], ["d1", "queue"]];
  const drawn = { which: downs[rng.int(3)], afterKill: 1 + rng.int(kills - 1), leadMs: rng.between(300, 1500), durationMs: rng.between(...durationRange) };
  const modes = { d1: ["d1"], queue: ["queue"], both: ["d1", "queue"] };
  if (mode !== "off") outage.plan = { ...drawn, ...(modes[mode] ? { which: modes[mode] } : {}) };
}

/** Sets the fault switch; throws (ending the chaos run) if the server has none or does not obey. */
export async function setFaults(change) {
  let res;
  let text;
  for (let tries = 1; ; tries++) {
    try {
      res = await fetch(`${server.baseUrl}/v1/dev/faults`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(change),
        signal: AbortSignal.timeout(10_000),
      });
      text = await res.text();
      break;
    } catch (err) {
      if (tries >= 3) throw new Error(`POST /v1/dev/faults ${JSON.stringify(change)} failed: ${err.message}`);
      await sleep(500);
    }
  }
  if (res.status !== 200) {
    throw new Error(
      `POST /v1/dev/faults ${JSON.stringify(change)} answered ${res.status} (${text.slice(0, 200)}): this dev server has no fault switch, ` +
        "so the outage phase cannot run (node chaos/run.mjs --outage off runs without it)",
    );
  }
  const state = JSON.parse(text).data;
  for (const [binding, on] of Object.entries(change)) {
    if (state?.[binding] !== on) throw new Error(`POST /v1/dev/faults ${JSON.stringify(change)} answered ${text.slice(0, 200)}: the switch did not take`);
  }
  return state;
}

/**
 * Sends the burst, waits until its runs are under way, takes the planned bindings down for the
 * planned time while the sending goes on, and brings them back. Then the queue alone goes down while
 * `swept` is sent in one request: stored, not dispatched, they are the tick's sweep's to re-enqueue.
 */
export async function runOutage(burst, swept) {
  const { which, leadMs, durationMs } = outage.plan;
  await Promise.all(burst.map((instance) => sendUntilAccepted([instance])));
  outage.burstAcceptedAt = Date.now();
  // Long enough for the burst's runs to start; short enough that their sleeps end during the outage.
  await sleep(leadMs);
  const change = Object.fromEntries(which.map((binding) => [binding, true]));
  await setFaults(change);
  outage.on = true;
  outage.startedAt = Date.now();
  log(`outage: ${which.join(" and ")} down for ${(durationMs / 1000).toFixed(1)} s (server life ${server.life})`);
  await sleep(durationMs);
  await setFaults(Object.fromEntries(which.map((binding) => [binding, false])));
  log(`outage over: ${which.join(" and ")} back up; ${sendStats.refusedInOutage} requests refused meanwhile (sent again)`);
  if (swept.length > 0) await sendWhileQueueDown(swept);
  outage.on = false;
  outage.endedAt = Date.now();
}

/**
 * Sends `swept` once while the queue alone is down: the request stores them, fails to queue them and
 * answers a 5xx. A 5xx does not say the events were not stored, and these were (read back): a sender
 * that does not send them again still gets their runs, from the tick's sweep, so they count as
 * accepted. Were they not stored (the request cut), they are sent again once the queue is back.
 */
async function sendWhileQueueDown(swept) {
  await setFaults({ queue: true });
  const answered200 = await sendBatch(swept);
  const stored = await Promise.all(swept.map(async ({ root }) => (await fetch(`${server.baseUrl}/v1/events/${encodeURIComponent(root)}`, { signal: AbortSignal.timeout(10_000) }).catch(() => null))?.status === 200));
  await setFaults({ queue: false });
  if (answered200 || !stored.every(Boolean)) {
    log(`the request of ${swept.length} events sent while the queue was down ${answered200 ? "answered 200" : "was not stored whole"}: sent again`);
    await sendUntilAccepted(swept);
    return;
  }
  for (const { root } of swept) if (!accepted.has(root)) accepted.set(root, { at: Date.now(), life: server.life });
  outage.sweptAt = Date.now();
  log(`the queue down alone: a request of ${swept.length} events answered 5xx with them stored; they wait for the tick's sweep`);
}
