// `npm run chaos`: starts `wrangler dev` (chaos/wrangler.toml) on a temp `--persist-to` dir, sends
// the events of chaos/scenarios.mjs over HTTP in many small requests, kills the dev server's whole
// process group with SIGKILL at random moments (0.3–3 s apart, at least 3 times), restarts it on
// the same state each time, takes D1 and/or the Queue down for 5–15 s between two kills (the dev
// server's fault switch, `POST /v1/dev/faults`), lets it settle, then checks:
// - every event answered with a 200 is in D1 (`GET /v1/events/:id`) and has its runs; the event
//   log holds each event a scenario leads to once, and no other (ids `step.sendEvent` derives
//   included);
// - every run reaches its expected final state with its expected output and stored steps;
// - every step body ran at attempts 0..n (counted by a counter server on 127.0.0.1 that each step
//   calls before returning): n is the attempts the row needs plus one per kill that cut the body
//   (a cut body fails that attempt and runs again at the next one, after the retry backoff); a kill
//   must lie between each execution and the next unless the row makes that attempt fail, and no
//   attempt runs twice.
// - a cron due every minute (chaos-cron) ran exactly once for every minute boundary the run spanned,
//   with kills aimed a few seconds before a boundary (the server down when the Scheduler's alarm is
//   due) and just after one (the tick cut mid-flight): each scheduled time ran once after the restart;
// - some requests go through the service binding (the StepflareService entrypoint, bound to the
//   chaos Worker itself): `send` like POST /e/:key, and `invoke`, whose runs must run once if the
//   call answered, and at most once if a kill or the outage cut it (nothing makes a call idempotent).
// - flow control across features: bursts under one key (a concurrency limit whose queued runs it
//   cancels, a throttle, a debounce, batches) and a function paused across a minute (its events,
//   its cron, step.invoke of it, direct starts): see chaos/README.md;
// - an app on the `inngest` SDK (chaos/app.mjs), served from this process across the kills and
//   synced once after the first start: its runs (steps, a sleep, a parallel pair) complete with their
//   output, and each of its step bodies ran again only when a kill lies between two executions.
// Crashes land wherever they land: in ingest (between the D1 write and the queue send), in the queue
// consumer (between starting runs and its D1 write), and in Durable Objects mid-run; some are aimed
// at a request, one just after a remote step's body begins, some just after a step that a
// `step.sendEvent` follows, and some at a minute.
//
// Usage: node chaos/run.mjs [--short] [--runs N] [--kills N] [--seed S] [--outage auto|d1|queue|both|off]
//        [--minute auto|before|after|both] [--keep]
//   full: 200 runs, 5 kills plus 2 at a minute, 10 invokes, 30 remote runs; --short (CI): 40 runs,
//   3 kills plus 1 at a minute, 3 invokes, 10 remote runs. --outage auto (the default) picks what goes down from the seed; off
//   skips the outage (a dev server without the fault switch). --minute: the kills at a minute,
//   before the boundary, just after it, or one of each (auto: short from the seed, full both).
// Prints `chaos: runs=… crashes=… lost=… duplicated=…` last and exits 1 if anything was lost,
// duplicated or wrong (2 if the run itself could not go on, say the fault switch is missing).
// Logs (one wrangler log per server life, counter hits, report) go to /tmp/stepflare-chaos-<time>/;
// the persisted state is kept there too when the run fails (or --keep).
//
// This file parses the options and runs the phases in order; the pieces live beside it:
//   lib/context.mjs   paths, constants, the log, and the state the modules share
//   lib/counter.mjs   the hit counter the steps report to
//   lib/server.mjs    freezing the Worker, the D1 migrations, starting/killing/stopping wrangler dev
//   lib/plan.mjs      the seeded generator, the requests, invocations and held-back instances
//   lib/send.mjs      sending batches, invokes, held-back and remote events
//   lib/outage.mjs    the fault switch and the outage phase
//   lib/minute.mjs    the kills at a minute boundary and the cron's window
//   lib/flow.mjs      the bursts of flow control under one key, their cancels, the coordinators' state
//   lib/pause.mjs     the pause across a minute
//   lib/kills.mjs     which kill aims where, and the phase of sending through the kills
//   lib/report.mjs    report.json and the lines printed last
//   verify/*.mjs      the checks: settle, runs (attempts against kills), coordination,
//                     invocations, cron, eventLog (D1 and the wrangler logs), flow, pause
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { signalGroup } from "../bench/lib/processes.mjs";
import { checkRemoteSteps, startApp, startProxy, syncApp } from "./app.mjs";
import { accepted, HIT_CLOCK_SLACK_MS, killTimes, log, makeOutDir, minuteKills, outage, paths, server, sleep, t0 } from "./lib/context.mjs";
import { startCounter } from "./lib/counter.mjs";
import { planFlow, sendFlowGroups } from "./lib/flow.mjs";
import { planKills, sendThroughKills, whereAimedKillsLanded } from "./lib/kills.mjs";
import { cronMinutes, CRON_RUN_GRACE_MS, MINUTE_MS, planMinuteKills } from "./lib/minute.mjs";
import { planOutage, setFaults } from "./lib/outage.mjs";
import { planPause, runPause } from "./lib/pause.mjs";
import { makeRng, plan, planRemote } from "./lib/plan.mjs";
import { buildReport, printSummary, writeReport, writeRunFiles } from "./lib/report.mjs";
import { applyMigrations, freezeWorker, startServer, stopServer } from "./lib/server.mjs";
import { remoteScenarios } from "./scenarios.mjs";
import { checkCoordination } from "./verify/coordination.mjs";
import { issue } from "./verify/common.mjs";
import { verifyCron } from "./verify/cron.mjs";
import { checkD1, readD1, scanLogs } from "./verify/eventLog.mjs";
import { checkFlow, settleFlow } from "./verify/flow.mjs";
import { verifyInvocations } from "./verify/invocations.mjs";
import { checkPause, pausedMinutesOver } from "./verify/pause.mjs";
import { verify } from "./verify/runs.mjs";
import { settle, settleOthers } from "./verify/settle.mjs";

const { values: opts } = parseArgs({
  options: {
    short: { type: "boolean", default: false },
    runs: { type: "string" },
    kills: { type: "string" },
    seed: { type: "string" },
    outage: { type: "string", default: "auto" },
    minute: { type: "string", default: "auto" },
    keep: { type: "boolean", default: false },
  },
});
const SHORT = opts.short;
const TARGET_RUNS = Number(opts.runs ?? (SHORT ? 40 : 200));
const KILLS = Math.max(3, Number(opts.kills ?? (SHORT ? 3 : 5)));
/** Runs started through the service binding's `invoke`. */
const INVOKES = SHORT ? 3 : 10;
/** Runs of the remote app's functions (chaos/app.mjs), sent one event a request, spread through the kills. */
const REMOTE_RUNS = SHORT ? 10 : 30;
const SEED = Number(opts.seed ?? Date.now() % 1_000_000);
const OUTAGE_MODES = ["auto", "d1", "queue", "both", "off"];
if (!OUTAGE_MODES.includes(opts.outage)) throw new Error(`--outage ${opts.outage}: expected one of ${OUTAGE_MODES.join(", ")}`);
const MINUTE_MODES = ["auto", "before", "after", "both"];
if (!MINUTE_MODES.includes(opts.minute)) throw new Error(`--minute ${opts.minute}: expected one of ${MINUTE_MODES.join(", ")}`);
/** How long the outage lasts: seeded, 5–10 s short (to stay within `npm test`'s budget), 5–15 s full. */
const OUTAGE_MS = SHORT ? [5_000, 10_000] : [5_000, 15_000];
/**
 * How long runs may take to settle after the last restart (and the outage). The slowest things the
 * engine may legitimately still do then:
 * - a step body a kill cut: its run resumes from its watchdog alarm (≤ 10 s), records the attempt
 *   as failed and retries it after Inngest's backoff for that attempt: 15–45 s after a first
 *   attempt, 30–60 s after a second, 60–90 s after a third (chaos-retry's flaky step, whose first
 *   attempts fail by design): up to ~100 s, plus the steps after it;
 * - an event lost from the queue (a kill between ingest's D1 write and its queue send, or an event
 *   stored while the Queue was down and answered with a 5xx): the Scheduler's sweep re-enqueues it
 *   (every 60 s, events older than 30 s), up to ~90 s, plus the run;
 * - a failure event or a `sendEvent` event stuck in a run's outbox by the outage: tried every 5 s.
 * Short: 120 s keeps `npm test`'s run within ~3 minutes at worst; full: 240 s, room for a step cut
 * twice (full runs kill for longer).
 */
const SETTLE_MS = SHORT ? 120_000 : 240_000;

makeOutDir();

process.on("exit", () => {
  if (server.child?.pid) signalGroup(server.child.pid, "SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (server.child?.pid) signalGroup(server.child.pid, "SIGKILL");
    process.exit(130);
  });
}

async function main() {
  const rng = makeRng(SEED);
  log(`mode ${SHORT ? "short" : "full"}: ${TARGET_RUNS} runs, ${KILLS} kills, seed ${SEED}; logs in ${paths.outDir}`);
  // The outage, drawn first so that a seed gives the same outage whatever the other options.
  planOutage(rng, opts.outage, KILLS, OUTAGE_MS);
  const counter = await startCounter();
  const { instances, requests, invocations, runs, aimed, aimedBuffered, burst, swept, late: lateReplies } = plan(rng, counter.url, outage.plan !== null, { targetRuns: TARGET_RUNS, kills: KILLS, invokes: INVOKES });
  const batches = requests.filter((r) => r.batch);
  // The remote app's runs, from a generator of their own: a seed gives the same local plan and kill delays.
  const remote = planRemote(makeRng(SEED ^ 0x5eed), REMOTE_RUNS);
  log(
    `${instances.length} events (${runs} runs) in ${batches.length} requests (${batches.filter((r) => r.via === "rpc").length} through the service binding's send), ` +
      `${aimed.length + aimedBuffered.length + burst.length} of them sent alone at aimed kills and before the outage, ${swept.length} in one request while the queue is down; ${invocations.length} runs started through its invoke; ` +
      `${remote.length} runs of the remote app's functions, one event a request`,
  );
  instances.push(...remote);
  // Flow control across features (lib/flow.mjs, lib/pause.mjs): bursts under one key, and a pause
  // across a minute; from a generator of their own, so a seed gives the same plan for the rest.
  const flow = planFlow(makeRng(SEED ^ 0xf10c), counter.url, SHORT);
  const paused = planPause(counter.url, SHORT);
  instances.push(...flow.instances, ...paused.instances);
  log(
    `flow control: ${flow.groups.length} bursts under one key (${flow.groups.map((g) => `${g.kind} ${g.members.length}`).join(", ")}), ` +
      `${flow.groups.flatMap((g) => g.members).filter((m) => m.data.cancel).length} runs to cancel; a pause across a minute with ${paused.instances.length} events`,
  );
  // The remote app lives in this process, across the kills; it calls Stepflare back through the proxy.
  const proxy = await startProxy(() => server.baseUrl);
  const app = await startApp(proxy.url, path.join(paths.outDir, "app.log"));
  if (outage.plan) log(`outage planned after kill #${outage.plan.afterKill}: ${outage.plan.which.join(" and ")} down for ${(outage.plan.durationMs / 1000).toFixed(1)} s`);
  const kills = planKills(rng, KILLS);
  planMinuteKills(rng, opts.minute, SHORT);

  await freezeWorker(counter.url);
  await applyMigrations();
  await startServer();
  // Fails now, not halfway, if this server has no fault switch.
  if (outage.plan) await setFaults({});
  const synced = await syncApp(server.baseUrl, app.url);
  const wantFunctions = remoteScenarios.map((s) => s.events({}, "x")[0].runs[0].fn);
  if (!wantFunctions.every((id) => synced.functions.includes(id))) throw new Error(`the remote app synced ${JSON.stringify(synced.functions)}, expected ${JSON.stringify(wantFunctions)}`);
  log(`remote app synced (${app.url}, calling back through ${proxy.url}): ${synced.functions.join(", ")}${synced.tries > 1 ? ` (after ${synced.tries} tries)` : ""}`);

  // The bursts are spread over about the time the kills take, as the remote events are; the pause
  // comes before the first minute it can reach.
  let flushFlow;
  const flowFlush = new Promise((resolve) => (flushFlow = resolve));
  const flowSending = sendFlowGroups(flow.groups, kills.length * 6_500 + (outage.plan ? outage.plan.leadMs + outage.plan.durationMs : 0), flowFlush);
  const pausing = runPause(paused.pause);
  const through = await sendThroughKills({ kills, requests, remote, aimed, aimedBuffered, burst, swept, lateReplies, instances, app });
  const { aimedKills, remoteAims } = through;
  flushFlow();
  await Promise.all([flowSending, pausing]);
  const chaosEnd = Math.max(through.chaosEnd, Date.now());
  log(`the flow bursts sent and the pause over: ${accepted.size}/${instances.length} events accepted`);

  const unsettled = await settle(instances, SETTLE_MS);
  const settledAfterMs = unsettled.length > 0 ? null : Date.now() - chaosEnd;
  if (unsettled.length > 0) log(`${unsettled.length} events not settled ${((Date.now() - chaosEnd) / 1000).toFixed(0)} s after the last kill (deadline ${SETTLE_MS / 1000} s)`);
  else log(`every event settled, ${((Date.now() - chaosEnd) / 1000).toFixed(0)} s after the last kill${outage.plan ? " and the outage" : ""}`);
  // The cron minutes checked: every boundary from the first tick's to the last one long enough
  // ago for its run to be over (and at least those the kills at a minute aimed at).
  const minutes = cronMinutes(Math.max(...minuteKills.map((m) => m.boundary ?? 0), Math.floor((Date.now() - CRON_RUN_GRACE_MS) / MINUTE_MS) * MINUTE_MS));
  const openOthers = await settleOthers(invocations, minutes, chaosEnd + SETTLE_MS);
  if (openOthers.length > 0) log(`${openOthers.length} invoked or cron runs not over by the deadline: ${openOthers.slice(0, 5).join(", ")}`);
  const openFlow = await settleFlow(flow.groups, pausedMinutesOver(minutes), chaosEnd + SETTLE_MS);
  if (openFlow.length > 0) log(`${openFlow.length} flow groups or paused minutes not over by the deadline: ${openFlow.slice(0, 5).join(", ")}`);
  // A little grace, so a step that would run a second time after the end is counted too.
  await sleep(2_000);
  log(`checking the events, the invocations and ${minutes.length} cron minutes`);
  const out = await verify(instances);
  const invokeStats = await verifyInvocations(invocations, out);
  const cronReport = await verifyCron(minutes, out);
  const coordination = checkCoordination(instances, invocations, out);
  // The other rows' coordinators: chaos-limited's (no key), and each debounce's and batch's of one event (keyed by root).
  const otherCoordinators = [
    ["chaos-limited", "concurrency:0", ""],
    ...instances.filter((x) => x.scenario.event === "chaos/debounced").map((x) => ["chaos-debounce", "debounce", x.root]),
    ...instances.filter((x) => x.scenario.event === "chaos/batched").map((x) => ["chaos-batch", "batchEvents", x.root]),
  ];
  const flowStats = await checkFlow(flow.groups, otherCoordinators, out);
  const pauseStats = await checkPause(paused.pause, minutes, out);
  const remoteStats = checkRemoteSteps(remote, app.hits, killTimes, out.found, out.problems, HIT_CLOCK_SLACK_MS);
  whereAimedKillsLanded(aimedKills, remoteAims, out, remoteStats);
  const logs = scanLogs();
  // The request sent while the queue was down had no dispatch but the sweep's: its runs ran, so it swept them.
  if (outage.sweptAt !== null && logs.reenqueued < swept.length) {
    issue(out.problems, "wrong", swept[0].root, { what: `the ${swept.length} events sent while the queue was down were to be re-enqueued by the tick's sweep, which re-enqueued ${logs.reenqueued} events` });
  }

  const results = { runs: runs + flow.runs + paused.runs, instances, remote, burst, invocations, synced, aimedKills, remoteAims, out, logs, invokeStats, coordination, flowStats, flowGroups: flow.groups, pauseStats, pause: paused.pause, remoteStats, cronReport, minutes, settledAfterMs };
  const report = buildReport({ mode: SHORT ? "short" : "full", seed: SEED, ...results });
  writeReport(report);
  writeRunFiles(instances, app.hits);

  await stopServer();
  counter.close();
  await app.stop();
  await proxy.close();
  // The D1 runs index and event log as the server left them (read with the server stopped).
  report.d1 = await readD1();
  checkD1(report.d1, out);
  const count = (kind) => out.problems.filter((p) => p.kind === kind).length;
  const lost = count("lost");
  const duplicated = count("duplicated");
  const wrong = count("wrong");
  Object.assign(report, { seconds: (Date.now() - t0) / 1000, lost, duplicated, wrong });
  writeReport(report);
  const failed = lost + duplicated + wrong > 0;
  if (!failed && !opts.keep) for (const dir of ["state", "bundle", ".wrangler"]) fs.rmSync(path.join(paths.outDir, dir), { recursive: true, force: true });

  printSummary(report, results);
  process.exitCode = failed ? 1 : 0;
}

main().catch(async (err) => {
  console.error(`[chaos] ${err.stack ?? err}`);
  if (server.child?.pid) signalGroup(server.child.pid, "SIGKILL");
  process.exit(2);
});
