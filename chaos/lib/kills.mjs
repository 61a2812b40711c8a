// The kills: which kill aims where, and the phase of the run in which the requests go out while
// the server is killed and restarted (the kills at a minute and the outage among them).
import { accepted, log, outage, sendStats, server, sleep } from "./context.mjs";
import { nextAimedHit } from "./counter.mjs";
import { minuteKillsWithin, RESTART_MS } from "./minute.mjs";
import { runOutage } from "./outage.mjs";
import { killServer, startServer } from "./server.mjs";
import { nextRequestStart, sendAll, sendRemote, sendUntilAccepted } from "./send.mjs";

/**
 * Which kill is aimed where: the first just after a step body of the remote app begins, then every
 * third just after a step a send follows, one in three 0–40 ms after a request starts, and of the
 * rest, alternately, just after a step of a run whose results are buffered (not written yet), then
 * at random.
 */
export const killKind = (k) => (k === 1 ? "remote" : k % 3 === 0 ? "send" : k % 3 === 2 ? "request" : k % 6 === 4 ? "buffered" : "random");

/** The kills' seeded delays: how long each server life lasts, and how soon after its aim each kill comes. */
export const planKills = (rng, count) =>
  Array.from({ length: count }, (_, i) => ({ kind: killKind(i + 1), waitMs: rng.between(300, 3000), aimMs: killKind(i + 1) === "send" ? rng.between(0, 8) : rng.between(0, 40) }));

/**
 * Sends a held-back `instance` and waits until its aimed step reports to the counter, then `aimMs`
 * more: the moment kill `k` comes. Answers how the kill was aimed, for the log.
 */
async function aimAtHeldBack(instance, step, k, aimMs, heldBack, aimedKills) {
  const reported = nextAimedHit(instance.root);
  heldBack.push(sendUntilAccepted([instance]));
  const hit = await Promise.race([reported.then(() => true), sleep(10_000).then(() => false)]);
  if (!hit) return `at a random moment (${instance.root}'s aimed step did not run within 10 s)`;
  await sleep(aimMs);
  aimedKills.push({ kill: k, root: instance.root, afterMs: aimMs });
  return `${aimMs.toFixed(0)} ms after ${instance.root}'s ${step}`;
}

/**
 * Sends every request (`requests`, the `remote` events, the instances held back for the aimed
 * kills, the outage's `burst` and `swept`, and last the `lateReplies`) while making the planned `kills`,
 * the kills at a minute and the outage; `instances` are all the events, for the log. Answers when
 * the last event was accepted (`chaosEnd`), and the kills aimed at a send and at a remote step.
 */
export async function sendThroughKills({ kills, requests, remote, aimed, aimedBuffered, burst, swept, lateReplies, instances, app }) {
  // Spread the requests over about half the time the kills take (a server life of 0.3–3 s, then
  // about 3.5 s to kill and restart), so crashes land in ingest and dispatch too.
  const intervalMs = Math.min(1000, Math.max(30, (kills.length * 2500) / requests.length));
  let sendingDone = false;
  const sending = sendAll(requests, intervalMs).then(() => (sendingDone = true));
  // The remote events: spread over about the time the kills (and the outage) take.
  let flushRemote;
  const remoteFlush = new Promise((resolve) => (flushRemote = resolve));
  const remoteWindowMs = kills.length * 6_500 + (outage.plan ? outage.plan.leadMs + outage.plan.durationMs : 0);
  const remoteSending = sendRemote(remote, remoteWindowMs, remoteFlush);
  const heldBack = [];
  const sendStart = Date.now();
  const aimedKills = [];
  const remoteAims = [];
  for (let k = 1; k <= kills.length; k++) {
    const { kind, waitMs, aimMs } = kills[k - 1];
    // A kill at a minute that comes before this one's moment (or during the restart after it) goes first.
    await minuteKillsWithin(waitMs + RESTART_MS);
    await sleep(waitMs);
    let how = "at a random moment";
    if (kind === "request" && !sendingDone) {
      // Aimed at a request: 0–40 ms after one starts, the window of ingest's D1 write and queue
      // send (a request takes 7–50 ms here), and of the consumer right after.
      const started = await Promise.race([nextRequestStart().then(() => true), sleep(3000).then(() => false)]);
      if (started) {
        await sleep(aimMs);
        how = `${aimMs.toFixed(0)} ms after a request started`;
      }
    } else if (kind === "remote") {
      // Aimed at a remote step: 0–40 ms after the next body of the app's functions begins (it
      // answers 0–150 ms later), so the kill cuts it, or the checkpoint that stores its result.
      const began = await Promise.race([app.nextBody(), sleep(3000).then(() => null)]);
      if (began) {
        await sleep(aimMs);
        how = `${aimMs.toFixed(0)} ms after the body of remote step ${began.fn}/${began.step} (${began.root}) began`;
        remoteAims.push({ kill: k, root: began.root, step: began.step, afterMs: aimMs });
      } else how = "at a random moment (no remote step body began within 3 s)";
    } else if (kind === "buffered") {
      // Aimed at buffered checkpoints: a held-back chaos/buffered instance goes out now, and the kill
      // comes 0–40 ms after its third step's body reports: the results of the first two (and maybe the
      // third) are not written yet, so they run again after the restart.
      how = await aimAtHeldBack(aimedBuffered.shift(), "third step (its results buffered) began", k, aimMs, heldBack, aimedKills);
    } else if (kind === "send") {
      // Aimed at a send: a held-back chaos/derived instance goes out now, and the kill comes
      // 0–8 ms after the counter answers its first step, the window in which that step's result,
      // the `step.sendEvent` after it and the delivery of its events (D1, then the queue) commit.
      how = await aimAtHeldBack(aimed.shift(), "first step (a send follows) returned", k, aimMs, heldBack, aimedKills);
    }
    const killMs = await killServer();
    log(`kill -9 #${k} ${how} (server life ${server.life}, its group gone in ${killMs} ms); ${accepted.size}/${instances.length} events accepted so far`);
    await startServer();
    if (outage.plan && k === outage.plan.afterKill) {
      // A minute that would pass during the outage (no kill can come then) gets its kill first.
      await minuteKillsWithin(outage.plan.leadMs + outage.plan.durationMs + RESTART_MS);
      await runOutage(burst, swept);
    }
  }
  flushRemote();
  // The kills at a minute not made yet: at the next boundaries (the runs settle meanwhile).
  await minuteKillsWithin(Infinity);
  await Promise.all([sending, ...heldBack, remoteSending]);
  // The replies held back: their waits are stored by now (or will be, after a kill's backoff).
  if (lateReplies.length > 0) log(`sending ${lateReplies.length} replies held back until after the kills`);
  await Promise.all(lateReplies.map((instance) => sendUntilAccepted([instance])));
  const chaosEnd = Date.now();
  log(
    `${accepted.size}/${instances.length} events accepted in ${((chaosEnd - sendStart) / 1000).toFixed(1)} s (${sendStats.requests} requests, ${sendStats.cut} cut by a kill, ` +
      `${sendStats.refused} refused${outage.plan ? `, ${sendStats.refusedInOutage} of them during the outage` : ""})`,
  );
  return { chaosEnd, aimedKills, remoteAims };
}

/**
 * Notes on each aimed kill where it landed, from what the checks found (`out` of the events'
 * checks, `remoteStats` of the remote app's).
 */
export function whereAimedKillsLanded(aimedKills, remoteAims, out, remoteStats) {
  const { reruns, sendCuts } = out;
  // Where a kill aimed at a remote step landed: before its result was stored (it ran again), or after.
  for (const aim of remoteAims) aim.landed = remoteStats.reruns.some((r) => r.root === aim.root && r.step === aim.step) ? "the step ran again" : "its result was stored";
  // Where each kill aimed at a send landed, as far as the run tells: before the step before the
  // send stored its result (it ran again), in the send (its step took two attempts), or after it.
  for (const aim of aimedKills) {
    if (aim.root.endsWith("-buffered")) {
      const again = reruns.filter((r) => r.root === aim.root && r.buffered).map((r) => r.step.split("/")[1]);
      aim.landed = again.length > 0 ? `before the buffered results were written: ${again.join(", ")} ran again` : "after the buffered results were written";
      continue;
    }
    if (reruns.some((r) => r.root === aim.root && r.step === "chaos-derived/work")) aim.landed = "before the first step stored its result";
    else if (sendCuts.some((c) => c.root === aim.root && c.step === "emit")) aim.landed = "in the send";
    else aim.landed = "after the send was stored";
  }
}
