// The cron: every minute boundary the run spanned ran exactly once, and no scheduled time twice.
import { cronScenario } from "../scenarios.mjs";
import { hits } from "../lib/context.mjs";
import { MINUTE_MS } from "../lib/minute.mjs";
import { getJson, groupBy, issue } from "./common.mjs";
import { checkEffects, checkRun, explainAttempts } from "./runs.mjs";

/**
 * The cron: for every minute boundary in `minutes` (the run spanned them, with the server up or
 * killed across them) the run of that scheduled time ran exactly once: its run (the id derives
 * from function, cron and time) is Completed with its output, its step's attempts are explained,
 * and no other run reported that time. Every other scheduled time the counter saw (a minute
 * before the window, or one after it) ran at most once. Answers each minute's report.
 */
export async function verifyCron(minutes, out) {
  const byRoot = groupBy(
    hits.filter((h) => h.root.startsWith("cron@")),
    (h) => h.root,
  );
  const report = [];
  for (const t of minutes) {
    const root = cronScenario.root(t);
    const runId = cronScenario.runId(t);
    out.runIds.add(runId);
    const mine = byRoot.get(root) ?? [];
    const ran = [...new Set(mine.map((h) => h.run))];
    const entry = { minute: new Date(t).toISOString(), runs: ran.length, firstStepAfterMs: mine.length ? Math.min(...mine.map((h) => h.at)) - t : null };
    report.push(entry);
    if (ran.some((id) => id !== runId)) issue(out.problems, "duplicated", root, { what: `the minute ${entry.minute} ran as run(s) ${ran.join(", ")}, expected only ${runId}` });
    const { status, body } = await getJson(`/v1/runs/${runId}`);
    if (status !== 200) {
      issue(out.problems, "lost", root, { what: `the cron's run for ${entry.minute} (${runId}) is not there: GET /v1/runs answered ${status}` });
      continue;
    }
    await checkRun(root, `the minute ${entry.minute}`, cronScenario.run(t), body.data, mine, out);
    checkEffects(root, cronScenario.effects(), mine, t, out);
  }
  // Scheduled times outside the window: at most once, and only on a minute.
  for (const [root, mine] of byRoot) {
    const t = Date.parse(root.slice("cron@".length));
    if (minutes.includes(t)) continue;
    if (t % MINUTE_MS !== 0) issue(out.problems, "wrong", root, { what: `the cron ran for ${root.slice(5)}, which is not on a minute` });
    const ran = [...new Set(mine.map((h) => h.run))];
    if (ran.length > 1) issue(out.problems, "duplicated", root, { what: `the cron ran ${ran.length} runs for ${root.slice(5)}: ${ran.join(", ")}` });
    for (const id of ran) out.runIds.add(id);
    const verdict = explainAttempts(mine.sort((a, b) => a.at - b.at), 0, t);
    if (verdict.duplicated) issue(out.problems, "duplicated", root, { what: `step chaos-cron/tick: ${verdict.duplicated}` });
  }
  return report;
}
