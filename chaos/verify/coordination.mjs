// Waits, cancellations and flow control: what the replies and cancels met, and how many
// `chaos-limited` bodies ran at once.
import { accepted, hits, killTimes } from "../lib/context.mjs";
import { issue } from "./common.mjs";

/**
 * Waits, cancellations and flow control, beyond the per-row checks: what the replies and cancels
 * met, and for `chaos-limited` (concurrency: 3; some of its runs among the `invocations`) how many
 * `work` bodies executed at once. Each body is executing from its hit until `workMs` later (it
 * sleeps that long after the counter answers), or until a kill ends it; more than 3 such windows
 * at one moment is a slot given twice ("wrong").
 */
export function checkCoordination(instances, invocations, out) {
  const byRoot = new Map(instances.map((x) => [x.root, x]));
  const invocationsByRoot = new Map(invocations.map((x) => [x.root, x]));
  const followUps = instances.filter((x) => x.trigger);
  const waits = instances.filter((x) => x.scenario.event === "chaos/wait");
  const replies = followUps.filter((x) => x.scenario.event === "chaos/reply");
  const repliesFirst = replies.filter((x) => accepted.get(x.root) && accepted.get(x.trigger) && accepted.get(x.root).at < accepted.get(x.trigger).at).length;
  const waitsOk = waits.filter((x) => out.found.get(x.root)?.["chaos-wait"]?.status === "Completed" && !out.problems.some((p) => p.root === x.root)).length;
  const cancellable = instances.filter((x) => x.scenario.event === "chaos/cancellable");
  const cancelled = cancellable.filter((x) => x.data.cancel);
  const ended = (status) => cancelled.filter((x) => out.found.get(x.root)?.["chaos-cancel"]?.status === status).length;
  const limited = instances.filter((x) => x.scenario.event === "chaos/limited");
  const windows = hits
    .filter((h) => h.step === "chaos-limited/work")
    .map((h) => {
      const data = byRoot.get(h.root)?.data ?? invocationsByRoot.get(h.root)?.data;
      const end = h.at + (data?.workMs ?? 0);
      const kill = killTimes.find((t) => t >= h.at);
      return { root: h.root, from: h.at, to: kill !== undefined && kill < end ? kill : end };
    });
  let maxOverlap = 0;
  let at = null;
  for (const w of windows) {
    // Windows are measured by the counter's clock, which sees a hit up to the counter's answer
    // delay (≤ 150 ms) before the body's sleep starts: a window counts from its hit + 150 ms.
    const from = w.from + 150;
    const overlapping = windows.filter((o) => o.from + 150 <= from && o.to > from).length;
    if (overlapping > maxOverlap) [maxOverlap, at] = [overlapping, from];
  }
  if (maxOverlap > 3) issue(out.problems, "wrong", `concurrency@${new Date(at).toISOString()}`, { what: `${maxOverlap} chaos-limited work bodies executing at once (concurrency: 3)` });
  return {
    waits: waits.length,
    waitsCompletedWithReply: waitsOk,
    replies: replies.length,
    waitsWithTwoReplies: waits.filter((x) => replies.filter((r) => r.trigger === x.root).length > 1).length,
    repliesAcceptedBeforeTrigger: repliesFirst,
    repliesAfterTheKills: replies.filter((x) => x.late).length,
    cancellable: cancellable.length,
    cancelsSent: cancelled.length,
    cancelledRuns: ended("Cancelled"),
    completedDespiteCancel: ended("Completed"),
    limitedRuns: limited.length,
    limitedInvoked: [...invocationsByRoot.values()].filter((x) => x.scenario.event === "chaos/limited").length,
    limitedMaxOverlap: maxOverlap,
  };
}
