// The pause: `chaos-pausable` (an event, a cron due every minute, and the child of chaos-invoker's
// step.invoke) is paused a few seconds before a minute boundary and resumed once that minute's cron
// run is recorded, with its events, invokes of it and direct starts sent meanwhile, through the kills.
import { flowScenarios, pausableCron } from "../flowScenarios.mjs";
import { log, sleep } from "./context.mjs";
import { tryJson } from "./flow.mjs";
import { cronWindowStart, isoMinute, MINUTE_MS } from "./minute.mjs";
import { sendUntilAccepted } from "./send.mjs";
import { whenUp } from "./server.mjs";

// The phase (runPause), beside the kills:
// 1. one `chaos/pausable` and one `chaos/invoker` event go out (they run as usual);
// 2. 4 s before the first minute boundary it can reach (one the first tick stored the cron for),
//    POST /v1/functions/chaos-pausable/pause, again until answered 200;
// 3. 1.5 s later (a pause reaches other isolates within a second), while paused: 2 (short) or 3
//    (full) of each event, one request each, and the direct starts, each again until it answers
//    anything but a cut or a 5xx: POST /v1/functions/chaos-pausable/invoke and /trigger, the
//    service binding's invoke, and POST /v1/runs/:id/rerun of the first event's run;
// 4. it holds the pause until the minute's cron run is in the runs index (Skipped) and the paused
//    invokers' runs have ended, at most 45 s past the minute; then POST …/resume, again until
//    answered (a 409 "not paused": an earlier try that a kill cut went through);
// 5. one more of each event goes out (they run as usual).

export const PAUSED_FN = "chaos-pausable";
/** How long before its minute the pause is asked for. */
const LEAD_MS = 4_000;
/** A pause takes effect at once in the isolate that took it, within a second in others (they cache the paused functions). */
export const PAUSE_SLACK_MS = 1_500;
/** How long past its minute the pause waits for the minute's run and the paused invokes. */
const HOLD_MS = 45_000;

/** The pause's events, before, during and after it, one request each. Answers { pause, instances, runs }. */
export function planPause(counterUrl, short) {
  const make = (kind, phase, n) => {
    const root = `chaos-p${phase}${n}-${kind}`;
    return { scenario: flowScenarios[kind], root, data: { counter: counterUrl, root, phase } };
  };
  const during = short ? 2 : 3;
  const events = {
    before: [make("pausable", "b", 0), make("invoker", "b", 0)],
    paused: Array.from({ length: during }, (_, n) => [make("pausable", "p", n), make("invoker", "p", n)]).flat(),
    after: [make("pausable", "a", 0), make("invoker", "a", 0)],
  };
  const instances = [...events.before, ...events.paused, ...events.after];
  // An invoker's child is a run of its own, but for the paused ones (refused).
  const runs = instances.length + 2;
  return { pause: { events, calls: [], boundary: null, pauseSentAt: null, pausedAt: null, resumeSentAt: null, resumedAt: null, minuteSeen: null }, instances, runs };
}

/** POSTs `path` (with `body`) until `done(answer)`; answers the answer. Throws after two minutes: the run cannot go on. */
async function postUntil(path, body, done) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    await whenUp();
    const answer = await tryJson(path, { method: "POST", headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    if (answer && done(answer)) return answer;
    if (Date.now() > deadline) throw new Error(`POST ${path} never answered as expected: last ${JSON.stringify(answer)?.slice(0, 300)}`);
    await sleep(300);
  }
}

/** A start of the paused function not through an event: answered 409 while paused (anything but a cut or a 5xx ends the tries). */
async function directStart(pause, what, path, body) {
  const sentAt = Date.now();
  const answer = await postUntil(path, body, (a) => a.status < 500);
  pause.calls.push({ what, status: answer.status, error: answer.body?.error ?? null, answer: answer.body, sentAt, at: Date.now() });
}

/** The run the first `chaos/pausable` event started (to rerun while paused), or null if it is not listed within 10 s. */
async function firstRunId(pause) {
  const root = pause.events.before[0].root;
  for (let tries = 0; tries < 50; tries++) {
    await whenUp();
    const listed = await tryJson(`/v1/events/${encodeURIComponent(root)}/runs`);
    const runId = listed?.status === 200 ? listed.body.data?.[0]?.run_id : undefined;
    if (runId) return runId;
    await sleep(200);
  }
  return null;
}

/** The pause phase (see the top of this file); what it did goes to `pause`. */
export async function runPause(pause) {
  const { events } = pause;
  await Promise.all(events.before.map((x) => sendUntilAccepted([x])));
  const boundary = Math.ceil(Math.max(cronWindowStart(), Date.now() + LEAD_MS + 1_000) / MINUTE_MS) * MINUTE_MS;
  pause.boundary = boundary;
  const rerunOf = firstRunId(pause);
  await sleep(boundary - LEAD_MS - Date.now());
  pause.pauseSentAt = Date.now();
  await postUntil(`/v1/functions/${PAUSED_FN}/pause`, undefined, (a) => a.status === 200);
  pause.pausedAt = Date.now();
  log(`pause: ${PAUSED_FN} paused ${((boundary - pause.pausedAt) / 1000).toFixed(1)} s before the minute ${isoMinute(boundary)}`);
  await sleep(PAUSE_SLACK_MS);
  const rerun = await rerunOf;
  const data = (what) => ({ counter: events.before[0].data.counter, root: `chaos-pdirect-${what}` });
  await Promise.all([
    ...events.paused.map((x) => sendUntilAccepted([x])),
    directStart(pause, "POST /v1/functions/:id/invoke", `/v1/functions/${PAUSED_FN}/invoke`, { data: data("invoke") }),
    directStart(pause, "POST /v1/functions/:id/trigger", `/v1/functions/${PAUSED_FN}/trigger`),
    directStart(pause, "the service binding's invoke", "/chaos/rpc/invoke", { functionId: PAUSED_FN, data: data("rpc") }),
    ...(rerun ? [directStart(pause, "POST /v1/runs/:id/rerun", `/v1/runs/${rerun}/rerun`)] : []),
  ]);
  // Held until the minute's run is recorded and the paused invokes have met the pause.
  const invokers = events.paused.filter((x) => x.scenario.event === "chaos/invoker");
  while (Date.now() < boundary + HOLD_MS) {
    await whenUp();
    if (!pause.minuteSeen) {
      const minute = await tryJson(`/v1/runs/${pausableCron.runId(boundary)}`);
      if (minute?.status === 200) pause.minuteSeen = { status: minute.body.data.status, at: Date.now() };
    }
    const ended = await Promise.all(
      invokers.map(async (x) => {
        const listed = await tryJson(`/v1/events/${encodeURIComponent(x.root)}/runs`);
        const runs = listed?.status === 200 ? listed.body.data : [];
        return runs.length > 0 && runs.every((r) => ["Completed", "Failed", "Cancelled"].includes(r.status));
      }),
    );
    if (pause.minuteSeen && ended.every(Boolean)) break;
    await sleep(500);
  }
  pause.resumeSentAt = Date.now();
  await postUntil(`/v1/functions/${PAUSED_FN}/resume`, undefined, (a) => a.status === 200 || a.status === 409);
  pause.resumedAt = Date.now();
  log(
    `pause: ${PAUSED_FN} resumed after ${((pause.resumeSentAt - pause.pausedAt) / 1000).toFixed(1)} s; its minute ${isoMinute(boundary)}: ` +
      `${pause.minuteSeen ? `${pause.minuteSeen.status} in the runs index` : "not in the runs index yet"}; direct starts answered ${pause.calls.map((c) => c.status).join(", ")}`,
  );
  await Promise.all(events.after.map((x) => sendUntilAccepted([x])));
}
