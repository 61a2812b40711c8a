// Sending: batches of events (POST /e/chaos or the service binding's `send`), the binding's
// `invoke`, held-back instances and the remote app's events, through the kills and the outage.
import { isDeepStrictEqual } from "node:util";
import { accepted, firstSent, log, outage, sendStats, server, sleep } from "./context.mjs";
import { whenUp } from "./server.mjs";

// Sending: one request at a time or two, all through the kills and the outage. A request the kill
// cut (or any answer but 200, like the 5xx of ingest while D1 or the Queue is down) is not accepted
// and is sent again later with the same event ids; an id answered with 200 must never be lost.

/** Resolvers waiting for the next request to start (aimed kills). */
let requestWaiters = [];
export const nextRequestStart = () => new Promise((resolve) => requestWaiters.push(resolve));

/**
 * Sends one batch of events, to POST /e/chaos (`via` "http") or through the service binding's
 * `send` (`via` "rpc": POST /chaos/rpc/send, which answers what `send` answered); answers whether
 * every event was accepted.
 */
export async function sendBatch(batch, via = "http") {
  const body = batch.map(({ scenario, root, data }) => ({ id: root, name: scenario.event, data }));
  for (const { root } of batch) if (!firstSent.has(root)) firstSent.set(root, Date.now());
  sendStats.requests++;
  if (via === "rpc") sendStats.viaRpc++;
  for (const resolve of requestWaiters) resolve();
  requestWaiters = [];
  const inOutage = outage.on;
  try {
    const res = await fetch(`${server.baseUrl}${via === "rpc" ? "/chaos/rpc/send" : "/e/chaos"}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = { body: text.slice(0, 200) };
    }
    const ids = batch.map((b) => b.root);
    if (res.status === 200 && isDeepStrictEqual(answer.ids, ids) && answer.status === 200) {
      sendStats.ok++;
      if (via === "rpc") sendStats.okViaRpc++;
      for (const id of ids) if (!accepted.has(id)) accepted.set(id, { at: Date.now(), life: server.life });
      return true;
    }
    sendStats.refused++;
    sendStats.refusals.push({ at: new Date().toISOString(), life: server.life, status: res.status, ids, outage: inOutage || outage.on });
    // Refusals during the outage are expected (and many): counted, not logged one by one.
    if (inOutage || outage.on) sendStats.refusedInOutage++;
    else log(`${via === "rpc" ? "send() through the service binding" : "POST /e/chaos"} answered ${res.status} in server life ${server.life} (sent again later): ${JSON.stringify(answer).slice(0, 200)}`);
    return false;
  } catch {
    sendStats.cut++;
    sendStats.cutIds.push(batch.map((b) => b.root));
    return false;
  }
}

/**
 * Starts a run through the service binding's `invoke` (POST /chaos/rpc/invoke), once: the call
 * has no idempotency key, so a call a kill cut, or one answered with an error after the run
 * started (D1 down for the runs index), is not made again. Its run must run once if the call
 * answered a run id, at most once otherwise.
 */
export async function sendInvoke(invocation) {
  invocation.sentAt = Date.now();
  firstSent.set(invocation.root, invocation.sentAt);
  sendStats.requests++;
  sendStats.invokes = (sendStats.invokes ?? 0) + 1;
  const inOutage = outage.on;
  try {
    const res = await fetch(`${server.baseUrl}/chaos/rpc/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ functionId: invocation.fn, data: invocation.data }),
      signal: AbortSignal.timeout(20_000),
    });
    const answer = await res.json().catch(() => ({}));
    if (res.status === 200 && answer.status === 200 && typeof answer.runId === "string") invocation.answer = { runId: answer.runId, life: server.life };
    else invocation.answer = { refused: res.status, error: answer.error, outage: inOutage || outage.on, life: server.life };
  } catch (err) {
    invocation.answer = { cut: true, error: String(err), life: server.life };
  }
}

export async function sendAll(requests, intervalMs) {
  const pending = [...requests];
  const inFlight = new Set();
  while (pending.length > 0 || inFlight.size > 0) {
    if (pending.length === 0 || inFlight.size >= 2) {
      await Promise.race([...inFlight, sleep(50)]);
      continue;
    }
    await whenUp();
    const request = pending.shift();
    const p = (request.invocation ? sendInvoke(request.invocation).then(() => true) : sendBatch(request.batch, request.via)).then((ok) => {
      inFlight.delete(p);
      if (!ok) pending.push(request);
    });
    inFlight.add(p);
    await sleep(intervalMs);
  }
}

/** Sends one batch now, and again until it is accepted (a held-back instance). */
export async function sendUntilAccepted(batch) {
  for (;;) {
    await whenUp();
    if (await sendBatch(batch)) return;
    await sleep(200);
  }
}

/**
 * Sends each remote event at its slot of `windowMs` from now (all that are left at once when
 * `flush` resolves: the kills are over), each in a request of its own, again until accepted.
 */
export async function sendRemote(remote, windowMs, flush) {
  const start = Date.now();
  await Promise.all(
    remote.map(async (instance) => {
      await Promise.race([sleep(instance.slot * windowMs), flush]);
      for (;;) {
        await whenUp();
        if (await sendBatch([instance], instance.via)) return;
        await sleep(outage.on ? 1_000 : 300);
      }
    }),
  );
  return Date.now() - start;
}
