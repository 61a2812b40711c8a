// The runs of the events: every accepted event is stored and has its expected runs, each run ends
// as its row says, and every step body ran at the attempts the kills explain (explainAttempts).
import { isDeepStrictEqual } from "node:util";
import { firstSent, HIT_CLOCK_SLACK_MS, hits, killTimes } from "../lib/context.mjs";
import { getJson, groupBy, issue, pool } from "./common.mjs";
import { observe } from "./settle.mjs";

/**
 * Checks the executions of one step body (sorted by time) against the engine's attempts: each
 * attempt runs at most once, in order, up to the one that ends the step. An attempt ends without
 * a further one when its body runs to the end (returns, or throws NonRetriableError), except the
 * first `planned` ones, which fail by design. Every other attempt that is not the last must have
 * been cut by a kill, or never got its body to the counter because a kill came first (the next
 * wake records it as failed with a RuntimeDiedError): one distinct kill per such attempt, after
 * its execution (or the one before, or `notBefore` if none) and before the next execution.
 * Answers { cuts } (one entry per attempt a kill ended), or { lost } / { duplicated } with why.
 */
/**
 * A step under buffered checkpoints: it runs at attempt 0 (it fails nothing by design), and again at
 * attempt 0 only after a kill that came since its run before (its result was not written yet).
 */
export function explainBuffered(seen) {
  const cuts = [];
  for (let i = 1; i < seen.length; i++) {
    if (seen[i].attempt !== 0) return { duplicated: `attempt ${seen[i].attempt} ran, but a buffered step is never blamed for a kill` };
    const k = killTimes.findIndex((t) => t >= seen[i - 1].at - HIT_CLOCK_SLACK_MS && t <= seen[i].at);
    if (k < 0) return { duplicated: `it ran again at ${new Date(seen[i].at).toISOString()} with no kill since its run before` };
    cuts.push({ attempt: 0, ran: true, killAfterMs: killTimes[k] - seen[i - 1].at, rerunAfterKillMs: seen[i].at - killTimes[k], buffered: true });
  }
  return { cuts };
}

export function explainAttempts(seen, planned, notBefore = -Infinity) {
  for (let i = 1; i < seen.length; i++) {
    if (seen[i].attempt === seen[i - 1].attempt) return { duplicated: `attempt ${seen[i].attempt} ran twice` };
    if (seen[i].attempt < seen[i - 1].attempt) return { duplicated: `attempt ${seen[i].attempt} ran after attempt ${seen[i - 1].attempt}` };
  }
  const last = seen.at(-1).attempt;
  if (last < planned) return { lost: `ran up to attempt ${last}, but attempts 0..${planned - 1} fail by design: its final attempt never ran` };
  const byAttempt = new Map(seen.map((h) => [h.attempt, h]));
  // The attempts a kill must have ended, each with the window its kill lies in.
  /** @type {{ attempt: number, execution?: object, next: object, from: number, k?: number }[]} */
  const needs = [];
  let previousAt = notBefore; // the last execution before the attempt in question
  for (let attempt = 0; attempt < last; attempt++) {
    const execution = byAttempt.get(attempt);
    const next = seen.find((h) => h.attempt > attempt);
    if (!(execution && attempt < planned)) needs.push({ attempt, execution, next, from: (execution?.at ?? previousAt) - HIT_CLOCK_SLACK_MS });
    if (execution) previousAt = execution.at;
  }
  // One distinct kill each, in order, each the first its window allows: the kill that cut an
  // execution is the first after it.
  let used = -1;
  for (const need of needs) {
    need.k = killTimes.findIndex((t, j) => j > used && t >= need.from && t <= need.next.at);
    if (need.k < 0) {
      return {
        duplicated: need.execution
          ? `attempt ${need.attempt} ran to its end and attempt ${need.next.attempt} ran after it with no kill between`
          : `attempt ${need.attempt} never ran and no kill before attempt ${need.next.attempt} explains its failure`,
      };
    }
    used = need.k;
  }
  // An attempt whose body never ran was most likely ended by the last kill before the next
  // execution (the matching stays valid: each kill stays after the one before and before the next).
  for (let i = needs.length - 1; i >= 0; i--) {
    const need = needs[i];
    if (need.execution) continue;
    const bound = i + 1 < needs.length ? needs[i + 1].k : killTimes.length;
    for (let j = bound - 1; j > need.k; j--) {
      if (killTimes[j] <= need.next.at) {
        need.k = j;
        break;
      }
    }
  }
  const cuts = needs.map(({ attempt, execution, next, k }) => ({
    attempt,
    ran: Boolean(execution),
    killAfterMs: execution ? killTimes[k] - execution.at : null,
    rerunAfterKillMs: next.at - killTimes[k],
  }));
  return { cuts };
}

/**
 * Checks one run found for `want` (a row's expected run) against it: final state, output, error,
 * stored steps, and each stored step's attempts against the executions the counter saw (`mine`,
 * the hits of the run's root). Problems go to `out.problems`; sends a kill cut to `out.sendCuts`.
 */
export async function checkRun(root, id, want, run, mine, out, detailPath = `/v1/runs/${run.run_id}`) {
  out.runsSeen++;
  out.runStates.set(run.run_id, { status: run.status, ended_at: run.ended_at });
  if (run.status !== want.status) {
    issue(out.problems, "lost", root, { what: `run ${run.run_id} (${want.fn}, ${id}) is ${run.status}, expected ${want.status}`, error: run.error });
    return;
  }
  if ("output" in want && !isDeepStrictEqual(run.output, want.output)) {
    issue(out.problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) output ${JSON.stringify(run.output)}, expected ${JSON.stringify(want.output)}` });
  }
  if (want.error && !JSON.stringify(run.error ?? {}).includes(want.error)) {
    issue(out.problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) error ${JSON.stringify(run.error)}, expected one with ${JSON.stringify(want.error)}` });
  }
  const detail = await getJson(detailPath);
  if (detail.status !== 200) {
    issue(out.problems, "lost", root, { what: `GET ${detailPath} answered ${detail.status}` });
    return;
  }
  const steps = detail.body.data.steps;
  const names = steps.map((s) => s.name);
  if (want.steps && !isDeepStrictEqual([...names].sort(), [...want.steps].sort())) {
    issue(out.problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) stored steps ${JSON.stringify(names)}, expected ${JSON.stringify(want.steps)}` });
  }
  if (want.forbidSteps?.some((name) => names.includes(name))) {
    issue(out.problems, "duplicated", root, { what: `run ${run.run_id} (${want.fn}) is ${run.status} but stored steps ${JSON.stringify(names)}, among them one of ${JSON.stringify(want.forbidSteps)}` });
  }
  if (want.quietAfterEnd && run.ended_at) {
    const late = mine.filter((h) => h.run === run.run_id && h.at > Date.parse(run.ended_at) + HIT_CLOCK_SLACK_MS);
    if (late.length > 0) issue(out.problems, "duplicated", root, { what: `run ${run.run_id} (${want.fn}) ended ${run.status} at ${run.ended_at}, but step bodies began after: ${late.map((h) => `${h.key} at ${new Date(h.at).toISOString()}`).join(", ")}` });
  } else if (want.quietAfterEnd) issue(out.problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) is ${run.status} with no ended_at` });
  // A cancelled run's sleep or wait is cleared where it stood; `failedSteps` failed and were caught.
  const unfinished = steps.filter((s) => s.status !== "Completed" && !((want.status === "Failed" || want.failedSteps?.includes(s.name)) && s.status === "Failed") && want.status !== "Cancelled");
  if (unfinished.length > 0) issue(out.problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) has unfinished steps ${JSON.stringify(unfinished.map((s) => [s.name, s.status]))}` });
  // Each stored step's attempts agree with the executions the counter saw: a counted step
  // ended at its last execution's attempt; an uncounted one (a send) took more than one
  // attempt only if kills cut it, and kills while its run was under way are all there are.
  const label = want.label ?? want.fn;
  for (const step of steps) {
    const attempts = mine.filter((h) => h.step === `${label}/${step.name}`).map((h) => h.attempt);
    if (attempts.length > 0) {
      if (step.attempts !== Math.max(...attempts) + 1) {
        issue(out.problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) stored step ${step.name} with ${step.attempts} attempts, but its last execution was attempt ${Math.max(...attempts)}` });
      }
    } else if (step.attempts > 1) {
      const from = Date.parse(run.run_started_at);
      const to = step.ended_at ? Date.parse(step.ended_at) : Date.now();
      const kills = killTimes.filter((t) => t >= from && t <= to).length;
      if (step.attempts - 1 > kills) {
        issue(out.problems, "duplicated", root, { what: `run ${run.run_id} (${want.fn}) stored step ${step.name} with ${step.attempts} attempts, but only ${kills} kills came while it ran` });
      } else out.sendCuts.push({ root, runId: run.run_id, step: step.name, attempts: step.attempts });
    }
  }
}

/**
 * Side effects of one root: each step body of `planned` (the row's effects) ran at the attempts
 * the engine allows, only for one event, and no other step body ran. `notBefore`: nothing of the
 * root could run before then. Cuts a kill made go to `out.reruns`.
 */
export function checkEffects(root, planned, mine, notBefore, out) {
  const bySteps = groupBy(mine, (h) => h.step);
  for (const step of new Set([...Object.keys(planned), ...bySteps.keys()])) {
    const seen = (bySteps.get(step) ?? []).sort((a, b) => a.at - b.at);
    const where = { hits: seen.map((h) => `#${h.attempt} at ${new Date(h.at).toISOString()}`) };
    if (!(step in planned)) {
      issue(out.problems, "duplicated", root, { what: `step ${step} ran ${seen.length} times, but the row runs no such step`, ...where });
      continue;
    }
    const eventIds = new Set(seen.map((h) => h.event));
    if (eventIds.size > 1) issue(out.problems, "duplicated", root, { what: `step ${step} ran for ${eventIds.size} different events: ${[...eventIds].join(", ")}`, ...where });
    if (seen.length === 0) {
      // `null`: a step that may not run (a cancelled run's).
      if (planned[step] !== null) issue(out.problems, "lost", root, { what: `step ${step} never ran` });
      continue;
    }
    const verdict = planned[step] === "buffered" ? explainBuffered(seen) : explainAttempts(seen, planned[step] ?? 0, notBefore);
    if (verdict.lost) issue(out.problems, "lost", root, { what: `step ${step} ${verdict.lost}`, ...where });
    else if (verdict.duplicated) issue(out.problems, "duplicated", root, { what: `step ${step}: ${verdict.duplicated}`, ...where });
    else for (const cut of verdict.cuts) out.reruns.push({ root, step, ...cut });
  }
  // A run resumed across a crash: it executed steps both before and after a kill.
  for (const [eventId, list] of groupBy(mine, (h) => `${h.event}|${h.step.split("/")[0]}`)) {
    const times = list.map((h) => h.at);
    const first = Math.min(...times);
    const last = Math.max(...times);
    if (killTimes.some((k) => k > first && k < last)) out.resumed.add(eventId);
  }
}

export async function verify(instances) {
  const out = {
    problems: [], // { kind: lost | wrong | duplicated, root, ... }
    runsSeen: 0,
    runStates: new Map(), // run id → { status, ended_at } as its object tells
    reruns: [], // step attempts a kill ended (cut mid-flight, or before the body ran)
    sendCuts: [], // sendEvent steps a kill cut: they stored more than one attempt
    resumed: new Set(), // runs with step executions on both sides of a crash
    expectedEvents: new Map(), // root → ids of every event it leads to, when all its runs were found
    runIds: new Set(), // every run id listed for an expected event (expected or not)
    found: new Map(), // root → { function id → its first run listed for the root's events }
  };
  const { problems } = out;
  const hitsByRoot = groupBy(hits, (h) => h.root);

  await pool(instances, 4, async (instance) => {
    const { root } = instance;
    const mine = hitsByRoot.get(root) ?? [];
    // Every accepted event is in the event log.
    const event = await getJson(`/v1/events/${encodeURIComponent(root)}`);
    if (event.status !== 200) issue(problems, "lost", root, { what: `GET /v1/events/${root} answered ${event.status}`, body: event.body });
    else if (event.body.data?.name !== instance.scenario.event || !isDeepStrictEqual(event.body.data?.data, instance.data)) {
      issue(problems, "wrong", root, { what: `GET /v1/events/${root} answered ${JSON.stringify(event.body.data).slice(0, 300)}, not the event sent` });
    }

    const { events } = await observe(instance);
    let complete = true;
    for (const { id, expected, status, runs } of events) {
      if (status !== 200) {
        issue(problems, "lost", root, { what: `event ${id} is not in the event log (${status})` });
        complete = false;
        continue;
      }
      for (const run of runs) out.runIds.add(run.run_id);
      const byFn = groupBy(runs, (r) => r.function_id);
      for (const [fn, list] of byFn) {
        if (!expected.runs.some((r) => r.fn === fn)) issue(problems, "duplicated", root, { what: `event ${id} has unexpected run(s) of ${fn}`, runs: list.map((r) => r.run_id) });
        else if (list.length > 1) issue(problems, "duplicated", root, { what: `event ${id} has ${list.length} runs of ${fn}`, runs: list.map((r) => r.run_id) });
      }
      for (const want of expected.runs) {
        const run = byFn.get(want.fn)?.[0];
        if (!run) {
          issue(problems, "lost", root, { what: `event ${id} has no run of ${want.fn}` });
          complete = false;
          continue;
        }
        await checkRun(root, `event ${id}`, want, run, mine, out);
      }
    }
    if (complete) out.expectedEvents.set(root, events.map((e) => e.id));

    // Side effects: each step body ran at the attempts the engine allows, and only for one event.
    const found = {};
    for (const { runs } of events) for (const run of runs) found[run.function_id] ??= run;
    out.found.set(root, found);
    checkEffects(root, instance.scenario.effects(instance.data, found), mine, firstSent.get(root), out);
  });
  return out;
}
