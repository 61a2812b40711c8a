// The report: report.json and the other files of the run's directory, and the lines printed last
// (test/e2e/chaos.test.ts reads the last three: the remote app's, the cron's, and `chaos: …`).
import fs from "node:fs";
import path from "node:path";
import { accepted, FINAL, HIT_CLOCK_SLACK_MS, hits, killTimes, log, minuteKills, outage, paths, sendStats, t0 } from "./context.mjs";
import { isoMinute } from "./minute.mjs";
import { runIdsOfRoot } from "../verify/common.mjs";

/** The report of the run, from the plan, the kills and what the checks found. */
export function buildReport({ mode, seed, runs, instances, remote, burst, invocations, synced, aimedKills, remoteAims, out, logs, invokeStats, coordination, flowStats, flowGroups, pauseStats, pause, remoteStats, cronReport, settledAfterMs }) {
  const { problems, runsSeen, reruns, sendCuts, runStates } = out;
  const resumed = out.resumed.size;
  const { reenqueued, sweeps, errors, reloads, faultLines, outboxRetries, endRetries } = logs;
  return {
    mode,
    seed,
    seconds: null,
    runs: runsSeen,
    expectedRuns: runs + remote.length,
    events: instances.length,
    crashes: killTimes.length,
    killTimes: killTimes.map((t) => new Date(t).toISOString()),
    aimedKills,
    outage: outage.plan
      ? {
          ...outage.plan,
          burst: burst.map((b) => b.root),
          burstAcceptedAt: new Date(outage.burstAcceptedAt).toISOString(),
          startedAt: new Date(outage.startedAt).toISOString(),
          endedAt: new Date(outage.endedAt).toISOString(),
          hitsDuring: hits.filter((h) => h.at >= outage.startedAt && h.at <= outage.endedAt).length,
          // Runs that ended while it was on: their ends, failure events and sends had to wait.
          runsEndedDuring: [...runStates.values()].filter((r) => r.ended_at && Date.parse(r.ended_at) >= outage.startedAt && Date.parse(r.ended_at) <= outage.endedAt).map((r) => r.status),
          faultLogLines: faultLines,
          outboxDeliveryRetries: outboxRetries,
          runEndRetries: endRetries,
        }
      : null,
    requests: sendStats,
    invocations: { ...invokeStats, calls: invocations.map(({ root, fn, answer, sentAt }) => ({ root, fn, sentAt: new Date(sentAt).toISOString(), answer, ran: runIdsOfRoot(root) })) },
    coordination,
    flow: { ...flowStats, groups: flowGroups.map(({ kind, key, sent, members }) => ({ kind, key, sent, members: members.map((m) => ({ root: m.root, ...(m.data.cancel ? { cancel: m.cancel ?? null } : {}) })) })) },
    pause: {
      ...pauseStats,
      boundary: pause.boundary && new Date(pause.boundary).toISOString(),
      ...Object.fromEntries(["pauseSentAt", "pausedAt", "resumeSentAt", "resumedAt"].map((k) => [k, pause[k] && new Date(pause[k]).toISOString()])),
      minuteSeen: pause.minuteSeen,
      calls: pause.calls,
    },
    remote: { sync: synced, aimedKills: remoteAims, ...remoteStats },
    cron: { minutes: cronReport, minuteKills: minuteKills.map((m) => ({ ...m, boundary: m.boundary && new Date(m.boundary).toISOString(), killAt: m.killAt && new Date(m.killAt).toISOString(), upAt: m.upAt && new Date(m.upAt).toISOString() })) },
    // How long after the last kill (and the outage) every event had settled; null if not in time.
    settledAfterMs,
    stepReruns: reruns.length,
    // For each attempt a kill ended: whether its body had run (and how long before the kill), and
    // how long after the kill the next attempt ran (watchdog plus retry backoff).
    stepRerunDetails: reruns,
    sendsCut: sendCuts,
    runsResumedAcrossACrash: resumed,
    sweeps,
    reenqueuedBySweep: reenqueued,
    unplannedReloads: reloads,
    problems,
    logErrors: errors.slice(0, 50),
  };
}

export const writeReport = (report) => fs.writeFileSync(path.join(paths.outDir, "report.json"), JSON.stringify(report, null, 2));

/** Writes every execution the counter and the remote app saw, and the events sent. */
export function writeRunFiles(instances, remoteHits) {
  fs.writeFileSync(path.join(paths.outDir, "hits.json"), JSON.stringify(hits, null, 1));
  fs.writeFileSync(path.join(paths.outDir, "remote-hits.json"), JSON.stringify(remoteHits, null, 1));
  fs.writeFileSync(path.join(paths.outDir, "events.json"), JSON.stringify(instances.map(({ scenario, root, data }) => ({ root, scenario: scenario.name, data, accepted: accepted.get(root) })), null, 1));
}

/** Prints the problems, warnings and what the run did, and last the remote app's, the cron's and the summary line. */
export function printSummary(report, results) {
  const { invocations, aimedKills, remote, remoteAims, out, logs, invokeStats, coordination, flowStats, pauseStats, remoteStats, cronReport, minutes } = results;
  const { problems, runsSeen, reruns, sendCuts } = out;
  const resumed = out.resumed.size;
  const { reenqueued, sweeps, errors, reloads, faultLines, outboxRetries, endRetries } = logs;
  const { lost, duplicated, wrong } = report;
  for (const p of problems.slice(0, 30)) console.log(`  ${p.kind}: ${p.root}: ${p.what}${p.hits ? ` (${p.hits.join(", ")})` : ""}`);
  if (problems.length > 30) console.log(`  … ${problems.length - 30} more in ${path.join(paths.outDir, "report.json")}`);
  if (reloads.length > 0) log(`warning: wrangler reloaded the server without a kill (${reloads.join(", ")}): a reload drops objects mid-step like a crash the checks do not know of`);
  if (errors.length > 0) log(`${errors.length} error lines in the wrangler logs (first: ${errors[0]})`);
  const ran = reruns.filter((r) => r.ran);
  const latestCut = Math.max(0, ...ran.map((r) => r.killAfterMs));
  // A step's result is stored within milliseconds of its body returning (the counter answers in
  // ≤ 150 ms, and a `work` body sleeps `workMs` after it): a second execution whose kill came much
  // later points at a result that was not durable.
  const workMs = new Map(results.instances.map((x) => [x.root, x.data?.workMs ?? 0]));
  const late = ran.filter((r) => r.killAfterMs > 2_000 + (r.step.endsWith("/work") ? (workMs.get(r.root) ?? 0) : 0));
  if (late.length > 0) log(`warning: ${late.length} step bodies ran again although the kill came > 2 s after their execution: ${JSON.stringify(late.slice(0, 5))}`);
  const soonest = Math.min(...reruns.map((r) => r.rerunAfterKillMs));
  log(
    `${sendStats.cut} requests cut by a kill; ${reruns.length} step attempts ended by a kill (${ran.length} cut mid-flight${ran.length ? `, each killed ≤ ${latestCut} ms after it ran` : ""}` +
      `${reruns.length ? `; the next attempt ran ${(soonest / 1000).toFixed(0)}–${(Math.max(...reruns.map((r) => r.rerunAfterKillMs)) / 1000).toFixed(0)} s after the kill` : ""}); ` +
      `${sendCuts.length} sendEvent steps cut; ${aimedKills.length ? `aimed kills landed ${aimedKills.map((a) => a.landed).join("; ")}; ` : ""}${resumed} runs resumed across a crash; ${reenqueued} events re-enqueued by ${sweeps} sweeps`,
  );
  if (outage.plan) {
    log(
      `outage: ${outage.plan.which.join(" and ")} down ${((outage.endedAt - outage.startedAt) / 1000).toFixed(1)} s; ${report.outage.hitsDuring} step executions meanwhile; ` +
        `${report.outage.runsEndedDuring.length} runs ended meanwhile (${report.outage.runsEndedDuring.filter((st) => st === "Failed").length} failed); ` +
        `${sendStats.refusedInOutage} requests refused; ${outboxRetries} outbox deliveries and ${endRetries} run ends retried; ${faultLines} log lines about the injected fault`,
    );
  }
  const staleIndex = (report.d1.unfinishedInIndex ?? []).filter((row) => FINAL.has(row.object?.status));
  if (report.d1.runsIndexByStatus) {
    log(
      `D1 after the run (shards ${report.d1.shards.join(", ")}): runs index ${JSON.stringify(report.d1.runsIndexByStatus)}, ${report.d1.undispatchedEvents.length} events never marked dispatched, ` +
        `${report.d1.eventLog.length} events in the log` +
        (staleIndex.length ? ` (warning: the index misses the end of ${staleIndex.length} runs their objects say are over: ${staleIndex.slice(0, 3).map((r) => r.id).join(", ")})` : ""),
    );
  } else log(`could not read D1: ${report.d1.error}`);
  log(
    `service binding: ${sendStats.viaRpc} requests through send() (${sendStats.okViaRpc} accepted, the rest sent again); ${invocations.length} invoke() calls: ` +
      `${invokeStats.answered} answered a run id, ${invokeStats.cut} cut by a kill, ${invokeStats.refused} answered an error; ${invokeStats.startedAnyway} of the unanswered ones started their run all the same` +
      `${invokeStats.startedAnyway ? ` (${invokeStats.startedAnywayUnindexed} of them missing from the runs index)` : ""}`,
  );
  log(`report in ${path.join(paths.outDir, "report.json")}; done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const c = coordination;
  log(
    `waits: ${c.waitsCompletedWithReply}/${c.waits} completed with their reply, resumed once (${c.replies} replies: ${c.waitsWithTwoReplies} waits got two, ${c.repliesAcceptedBeforeTrigger} accepted before their trigger, ${c.repliesAfterTheKills} sent after the kills); ` +
      `cancelOn: ${c.cancelsSent} cancels for ${c.cancellable} sleeping runs: ${c.cancelledRuns} Cancelled, ${c.completedDespiteCancel} Completed (no cancel met the run while it was under way); ` +
      `concurrency 3: ${c.limitedRuns + c.limitedInvoked} runs, at most ${c.limitedMaxOverlap} work bodies at once`,
  );
  log(flowLine(flowStats, pauseStats));
  // The remote app's line: its runs, and its step bodies that ran again (each after a kill that cut it).
  const remoteRoots = new Set(remote.map((r) => r.root));
  const remoteProblems = problems.filter((p) => remoteRoots.has(p.root));
  const rerunGaps = remoteStats.reruns.map((r) => r.rerunAfterKillMs / 1000);
  const remoteDuplicated = remoteProblems.filter((p) => p.kind === "duplicated").length;
  console.log(
    `chaos remote: ${remoteStats.completed}/${remoteStats.runs} runs completed, ${remoteDuplicated ? `${remoteDuplicated} with a step run again with no kill between` : "each step once"} ` +
      `(${remoteStats.ranAgain} of ${remoteStats.steps} steps ran again after a kill cut them${rerunGaps.length ? `, ${Math.min(...rerunGaps).toFixed(1)}–${Math.max(...rerunGaps).toFixed(1)} s after the kill` : ""}; ` +
      `${remoteStats.resumed} runs resumed across a crash${remoteAims.length ? `; the kill aimed at a remote step: ${remoteAims.map((a) => a.landed).join(", ")}` : ""}); lost=${remoteProblems.filter((p) => p.kind === "lost").length} duplicated=${remoteDuplicated}`,
  );
  // The cron's line: the minutes checked, the kills at a minute, and what they found.
  const cronProblems = problems.filter((p) => String(p.root).startsWith("cron@"));
  const firstStep = (t) => cronReport.find((m) => m.minute === new Date(t).toISOString())?.firstStepAfterMs;
  // The server runs an overdue alarm as it starts, before the runner's first request gets through.
  const sinceRestart = (ms) => (ms < 100 ? "as the server came back" : `${(ms / 1000).toFixed(1)} s after the server was back`);
  const aimedAtMinutes = minuteKills
    .filter((m) => m.killAt)
    .map((m) => {
      const off = m.killAt - m.boundary;
      const down = m.killAt < m.boundary && m.upAt > m.boundary;
      const ranAfter = firstStep(m.boundary);
      return (
        `${off < 0 ? `${(-off / 1000).toFixed(1)} s before` : `${off} ms after`} ${isoMinute(m.boundary)} (${down ? `down ${((m.upAt - m.killAt) / 1000).toFixed(1)} s across it` : "up at the minute"}` +
        `${ranAfter != null ? `, its run's step ran ${(ranAfter / 1000).toFixed(1)} s after the minute, ${m.boundary + ranAfter <= m.killAt + HIT_CLOCK_SLACK_MS ? "before the kill" : sinceRestart(m.boundary + ranAfter - m.upAt)}` : ""})`
      );
    });
  const upLateness = cronReport.filter((m) => !minuteKills.some((k) => k.boundary === Date.parse(m.minute)) && m.firstStepAfterMs != null).map((m) => m.firstStepAfterMs);
  console.log(
    `chaos cron: minutes=${minutes.length}${minutes.length ? ` (${isoMinute(minutes[0])}–${isoMinute(minutes.at(-1))} UTC)` : ""} ` +
      `ran=${cronReport.filter((m) => m.runs === 1).length} once, ${cronReport.filter((m) => m.runs > 1).length} more than once; ` +
      `kills at a minute: ${aimedAtMinutes.join("; ") || "none"}; ` +
      `${upLateness.length ? `other minutes' first step ≤ ${Math.max(...upLateness)} ms after the minute; ` : ""}` +
      `lost=${cronProblems.filter((p) => p.kind === "lost").length} duplicated=${cronProblems.filter((p) => p.kind === "duplicated").length}`,
  );
  console.log(`chaos: runs=${runsSeen} crashes=${killTimes.length} lost=${lost} duplicated=${duplicated}${wrong ? ` wrong=${wrong}` : ""}`);
}

/** The line of flow control across features (verify/flow.mjs and verify/pause.mjs): what the bursts and the pause did. */
function flowLine(f, p) {
  const sizes = f.batchSizes.length ? `sizes ${Math.min(...f.batchSizes)}–${Math.max(...f.batchSizes)}` : "none";
  return (
    `flow: concurrency 2 per key: ${f.queuedRuns} runs, ${f.cancels} cancelled (${f.cancelledQueued} while queued, ${f.cancelledRunning} while running, ${f.endedBeforeCancel} ended first${f.notCancelled ? `, ${f.notCancelled} never listed in time` : ""}), ` +
      `at most ${f.queuedMaxAtOnce} work bodies at once; throttle: ${f.throttledRuns} runs, starts ≥ ${Number.isFinite(f.throttleMinGapMs) ? f.throttleMinGapMs : "-"} ms apart; ` +
      `debounce: ${f.debounceEvents} events in ${f.debounceGroups} bursts → ${f.debounceRuns} runs (${f.debounceSplits} split by a late event); ` +
      `batches: ${f.batchEvents} events in ${f.batchGroups} bursts → ${f.batchRuns} runs (${sizes}); ${f.coordinators} coordinators empty at the end; ` +
      `pause: ${p.pausedForMs != null ? `${(p.pausedForMs / 1000).toFixed(1)} s across ${p.minute?.slice(11, 19)} (its cron run ${p.minuteSkipped ? "Skipped" : "not Skipped"})` : "did not finish"}, ` +
      `${p.recorded} events recorded ran after the resume, step.invoke ${p.invokesRefused} refused ("is paused") and ${p.invokesRan} ran, direct starts answered ${p.calls.join(", ") || "none"}`
  );
}
