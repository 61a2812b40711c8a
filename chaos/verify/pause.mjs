// The pause (lib/pause.mjs): while chaos-pausable was paused no run of it started by any way in;
// its events were recorded and ran after the resume, in the order they came; its cron minute passed
// as a Skipped run; step.invoke of it failed in the parent with "is paused"; the direct starts answered 409.
import { accepted, FINAL, hits } from "../lib/context.mjs";
import { cronWindowStart, MINUTE_MS } from "../lib/minute.mjs";
import { PAUSE_SLACK_MS, PAUSED_FN } from "../lib/pause.mjs";
import { pausableCron } from "../flowScenarios.mjs";
import { getJson, groupBy, issue, pool } from "./common.mjs";
import { eventTimes } from "./flow.mjs";
import { checkEffects, checkRun, explainAttempts } from "./runs.mjs";

const iso = (t) => new Date(t).toISOString();

/** Every run of `fn` in the runs index (GET /v1/runs, a page at a time). */
async function indexedRuns(fn) {
  const rows = [];
  let cursor = null;
  do {
    const { status, body } = await getJson(`/v1/runs?function_id=${fn}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (status !== 200) throw new Error(`GET /v1/runs?function_id=${fn} answered ${status}`);
    rows.push(...body.data);
    cursor = body.next_cursor;
  } while (cursor);
  return rows;
}

/** For settleFlow: the paused function's cron run of each minute checked is over (Skipped counts). */
export const pausedMinutesOver = (minutes) =>
  minutes.map((t) => ({
    what: pausableCron.root(t),
    done: async () => {
      const { status, body } = await getJson(`/v1/runs/${pausableCron.runId(t)}`);
      return status === 200 && (FINAL.has(body.data.status) || body.data.status === "Skipped");
    },
  }));

/** Every check of the pause (after the runs settled, before the server stops); answers what the report prints. */
export async function checkPause(pause, minutes, out) {
  const stats = { pausedForMs: null, minute: pause.boundary && iso(pause.boundary), minuteSkipped: false, skipped: 0, recorded: 0, invokesRefused: 0, invokesRan: 0, calls: pause.calls.map((c) => c.status) };
  if (!pause.pausedAt || !pause.resumeSentAt) {
    issue(out.problems, "wrong", "pause", { what: "the pause phase did not finish" });
    return stats;
  }
  // The pause holds for sure from a little after it was answered until the resume was asked for.
  const from = pause.pausedAt + PAUSE_SLACK_MS;
  const to = pause.resumeSentAt;
  stats.pausedForMs = to - pause.pausedAt;
  const inPause = (t) => t >= from && t <= to;
  // A skip or a refusal can come only while the pause may hold: from its first ask to a little after the resume was answered.
  const mayHold = (t) => t >= pause.pauseSentAt && t <= pause.resumedAt + PAUSE_SLACK_MS;

  // No run of the paused function started while paused (a run's object says when it started).
  const details = new Map();
  await pool(await indexedRuns(PAUSED_FN), 4, async (row) => {
    const { status, body } = await getJson(`/v1/runs/${row.run_id}`);
    if (status === 200) details.set(row.run_id, body.data);
  });
  for (const [id, run] of details) {
    const startedAt = Date.parse(run.run_started_at);
    if (run.status === "Skipped") {
      stats.skipped++;
      if (!String(run.skip_reason).includes("paused") || !mayHold(startedAt)) issue(out.problems, "wrong", id, { what: `run ${id} of ${PAUSED_FN} was Skipped at ${run.run_started_at} (${run.skip_reason}), not while paused (${iso(pause.pausedAt)}–${iso(to)})` });
      continue;
    }
    if (inPause(startedAt)) issue(out.problems, "wrong", id, { what: `run ${id} of ${PAUSED_FN} (event ${run.event_id}) started at ${run.run_started_at}, while the function was paused (${iso(from)}–${iso(to)})` });
  }

  // The cron: the minute the pause spanned is Skipped with no step run; every other minute ran once.
  for (const t of minutes) {
    const root = pausableCron.root(t);
    const id = pausableCron.runId(t);
    out.runIds.add(id);
    const mine = hits.filter((h) => h.root === root);
    const run = details.get(id);
    if (!run) {
      issue(out.problems, "lost", root, { what: `the paused function's cron run for ${iso(t)} (${id}) is not in the runs index` });
      continue;
    }
    if (run.status === "Skipped") {
      if (t === pause.boundary) stats.minuteSkipped = true;
      if (mine.length > 0) issue(out.problems, "duplicated", root, { what: `the minute ${iso(t)} of ${PAUSED_FN} is Skipped, but its step ran` });
      continue;
    }
    // The pause came before this minute and held until its run was recorded: the tick met the pause.
    if (t === pause.boundary && from <= t && pause.minuteSeen) issue(out.problems, "wrong", root, { what: `the minute ${iso(t)} passed while ${PAUSED_FN} was paused, but its run ${id} is ${run.status}, not Skipped` });
    await checkRun(root, `the minute ${iso(t)}`, pausableCron.run(t), run, mine, out);
    checkEffects(root, pausableCron.effects(), mine, t, out);
  }
  // Scheduled times outside the minutes checked: at most once each; and the index's cron rows since the first tick are accounted for.
  for (const [root, mine] of groupBy(hits.filter((h) => h.root.startsWith("pcron@")), (h) => h.root)) {
    const t = Date.parse(root.slice("pcron@".length));
    if (minutes.includes(t)) continue;
    const ran = [...new Set(mine.map((h) => h.run))];
    if (ran.length > 1) issue(out.problems, "duplicated", root, { what: `${PAUSED_FN}'s cron ran ${ran.length} runs for ${iso(t)}: ${ran.join(", ")}` });
    const verdict = explainAttempts(mine.sort((a, b) => a.at - b.at), 0, t);
    if (verdict.duplicated) issue(out.problems, "duplicated", root, { what: `step chaos-pausable/got: ${verdict.duplicated}` });
  }
  for (let t = cronWindowStart() - 2 * MINUTE_MS; t <= Date.now() + 3 * MINUTE_MS; t += MINUTE_MS) out.runIds.add(pausableCron.runId(t));

  // Its events recorded while paused (accepted and dispatched in the pause: one a kill lost from the
  // queue comes back from the sweep later, as a new event would) ran after the resume, in the order they came.
  const sent = pause.events.paused.filter((x) => x.scenario.event === "chaos/pausable");
  const times = await eventTimes(sent.map((x) => x.root));
  const recorded = sent.filter((x) => inPause(accepted.get(x.root)?.at ?? -1) && (times.get(x.root)?.dispatched_at ?? Infinity) <= to);
  stats.recorded = recorded.length;
  const started = [];
  for (const x of recorded) {
    const run = details.get(out.found.get(x.root)?.[PAUSED_FN]?.run_id);
    if (run) started.push({ root: x.root, receivedAt: times.get(x.root).received_at, startedAt: Date.parse(run.run_started_at) });
  }
  started.sort((a, b) => a.receivedAt - b.receivedAt);
  for (let i = 1; i < started.length; i++) {
    if (started[i].startedAt < started[i - 1].startedAt) issue(out.problems, "wrong", started[i].root, { what: `the resume started ${started[i].root}'s run before ${started[i - 1].root}'s, though its event came later` });
  }

  // step.invoke of it: refused with "is paused" only while paused; otherwise its child ran once.
  for (const x of [...pause.events.before, ...pause.events.paused, ...pause.events.after].filter((y) => y.scenario.event === "chaos/invoker")) {
    const run = out.found.get(x.root)?.["chaos-invoker"];
    if (run?.status !== "Completed") continue; // the row's check reports it
    const { body } = await getJson(`/v1/runs/${run.run_id}`);
    const refused = run.output?.refused;
    if (refused !== undefined) {
      stats.invokesRefused++;
      const endedAt = Date.parse(body.data.steps.find((s) => s.name === "call")?.ended_at ?? "");
      if (!String(refused).includes("is paused")) issue(out.problems, "wrong", x.root, { what: `step.invoke of ${PAUSED_FN} failed with ${JSON.stringify(refused)}, expected "is paused"` });
      if (!mayHold(endedAt)) issue(out.problems, "wrong", x.root, { what: `step.invoke of ${PAUSED_FN} was refused at ${body.data.steps.find((s) => s.name === "call")?.ended_at}, not while paused` });
      continue;
    }
    stats.invokesRan++;
    const child = body.data.children?.find((c) => c.function_id === PAUSED_FN);
    if (!child) {
      issue(out.problems, "lost", x.root, { what: `run ${run.run_id} invoked ${PAUSED_FN} and completed, but lists no child run` });
      continue;
    }
    out.runIds.add(child.run_id);
    const childRun = details.get(child.run_id);
    if (!childRun) issue(out.problems, "lost", x.root, { what: `the child run ${child.run_id} of ${run.run_id} is not in the runs index` });
    else await checkRun(x.root, "step.invoke's child", { fn: PAUSED_FN, status: "Completed", output: { got: x.root }, steps: ["got"] }, childRun, hits.filter((h) => h.root === x.root), out);
  }

  // The direct starts while paused: 409, naming the pause, nothing started.
  for (const call of pause.calls) {
    if (call.status !== 409 || !String(call.error).includes("is paused")) issue(out.problems, "wrong", "pause", { what: `${call.what} answered ${call.status} while ${PAUSED_FN} was paused: ${JSON.stringify(call.answer).slice(0, 300)}` });
  }
  return stats;
}
