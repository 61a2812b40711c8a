// The remote app of `npm run chaos`: an app on the official `inngest` SDK, served by `inngest/node`
// from the chaos process itself, so it lives across the kills of the dev server as a real app would.
// Stepflare runs its functions over the SDK's wire protocol (worker/remote/execute.ts). Each step
// body records its execution here (run id from the handler's `runId`, step, attempt, time) before
// returning, as chaos/index.ts's steps report to the counter; `checkRemoteSteps` holds those
// executions against the kills.
//
// The app reaches Stepflare (checkpoints, a sync that calls back) at one fixed URL, a forwarding
// proxy in this process, while each server life listens on a port of its own: like the app's
// INNGEST_BASE_URL pointing at a load balancer in front of a Worker that restarts. A request the
// proxy cannot forward (the server is down, or dies while it answers) has its socket destroyed,
// as a connection to a dead host would.
import fs from "node:fs";
import http from "node:http";
import { Inngest } from "inngest";
import { serve } from "inngest/node";

/** The app's id: its functions join Stepflare's registry as `chaos-app-<function id>`. */
export const APP_ID = "chaos-app";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const listen = (server) =>
  new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });

const closeServer = (server) =>
  new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

/** Forwards every request to `target()` (the current server life's base URL). */
export async function startProxy(target) {
  const server = http.createServer((req, res) => {
    let url;
    try {
      url = new URL(req.url, target());
    } catch {
      return void req.socket.destroy(); // no server life yet
    }
    const upstream = http.request(url, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.on("error", () => req.socket.destroy());
    });
    upstream.on("error", () => req.socket.destroy());
    req.pipe(upstream);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}

/**
 * Creates the app against `baseUrl` (the proxy) and serves it at `/api/inngest`; its SDK logs go
 * to `logFile`, not to the runner's output. Answers the serve URL, the recorded executions
 * (`hits`: { root, fn, runId, step, attempt, at }), `nextBody()` (resolves with the next hit as its
 * body begins: a kill aimed at a remote step) and a stop().
 */
export async function startApp(baseUrl, logFile) {
  const write = (level) => (...args) => fs.appendFileSync(logFile, `${new Date().toISOString()} ${level} ${args.map((a) => (typeof a === "string" ? a : JSON.stringify(a, errorFields))).join(" ")}\n`);
  const logger = { info: write("info"), warn: write("warn"), error: write("error"), debug: () => {} };
  const inngest = new Inngest({ id: APP_ID, isDev: true, baseUrl, logger });
  const hits = [];
  let bodyWaiters = [];
  /**
   * A step body: records its execution, then answers after 0–150 ms (as the counter does), which
   * widens the window in which a kill cuts a step whose body ran.
   */
  const body = (ctx, fn, step, value) => async () => {
    const hit = { root: ctx.event.data.root, fn, runId: ctx.runId, step, attempt: ctx.attempt, at: Date.now() };
    hits.push(hit);
    for (const resolve of bodyWaiters) resolve(hit);
    bodyWaiters = [];
    await sleep(Math.random() * 150);
    return value;
  };

  // Retries leave room for the kills: a kill while an invocation is open counts as a crash of the run.
  const steps = inngest.createFunction({ id: "steps", retries: 6, triggers: [{ event: "chaos/remote-steps" }] }, async (ctx) => {
    const { n, sleepMs } = ctx.event.data;
    const a = await ctx.step.run("a", body(ctx, "steps", "a", 2 * n));
    await ctx.step.sleep("nap", sleepMs);
    const b = await ctx.step.run("b", body(ctx, "steps", "b", a + 1));
    const c = await ctx.step.run("c", body(ctx, "steps", "c", a + b));
    return { a, b, c };
  });

  const parallel = inngest.createFunction({ id: "parallel", retries: 6, triggers: [{ event: "chaos/remote-parallel" }] }, async (ctx) => {
    const { n } = ctx.event.data;
    const x = await ctx.step.run("x", body(ctx, "parallel", "x", `x${n}`));
    const [p, q] = await Promise.all([ctx.step.run("p", body(ctx, "parallel", "p", `${x}p`)), ctx.step.run("q", body(ctx, "parallel", "q", `${x}q`))]);
    return { x, p, q };
  });

  const handler = serve({ client: inngest, functions: [steps, parallel] });
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith("/api/inngest")) return handler(req, res);
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 60_000;
  const port = await listen(server);
  const nextBody = () => new Promise((resolve) => bodyWaiters.push(resolve));
  return { url: `http://127.0.0.1:${port}/api/inngest`, hits, nextBody, stop: () => closeServer(server) };
}

function errorFields(_key, value) {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}

/**
 * Syncs the app (`POST /v1/apps { url }`) until Stepflare answers 200; answers the attempts it took.
 * Throws after `tries` answers that are not (the runner cannot go on without the app's functions).
 */
export async function syncApp(baseUrl, url, tries = 5) {
  let last = "";
  for (let n = 1; n <= tries; n++) {
    try {
      const res = await fetch(`${baseUrl}/v1/apps`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url }), signal: AbortSignal.timeout(20_000) });
      const text = await res.text();
      if (res.status === 200) {
        const functions = JSON.parse(text).data?.functions?.map((f) => f.id) ?? [];
        return { tries: n, functions };
      }
      last = `${res.status} ${text.slice(0, 200)}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(1_000);
  }
  throw new Error(`POST /v1/apps ${JSON.stringify({ url })} did not answer 200 in ${tries} tries (last: ${last})`);
}

/**
 * The executions of the remote steps, against the kills. For each remote instance (`found`: its
 * run, as its event's runs list it): every step its row runs executed at least once, all in that
 * one run, and no step it does not run; a step ran again only when a kill lies between one
 * execution and the next (one distinct kill per re-execution, from `slackMs` before the earlier
 * execution, a body that began as the kill came, to the later one), so it never ran more than
 * 1 + (kills during the run) times. Stepflare's attempts do not move when a kill cuts a remote
 * step (its next call rediscovers the step, at the same attempt), so only the times tell.
 * Problems go to `problems` ({ kind, root, what, hits? }); answers what the report prints.
 */
export function checkRemoteSteps(instances, hits, killTimes, found, problems, slackMs) {
  const iso = (t) => new Date(t).toISOString();
  const stats = { runs: instances.length, completed: 0, steps: 0, ranAgain: 0, resumed: 0, reruns: [] };
  for (const instance of instances) {
    const { root, scenario, data } = instance;
    const want = scenario.events(data, root)[0].runs[0];
    const run = found.get(root)?.[want.fn];
    const mine = hits.filter((h) => h.root === root).sort((x, y) => x.at - y.at);
    const before = problems.length;
    const issue = (kind, what, list = mine) => problems.push({ kind, root, what, hits: list.map((h) => `${h.step}#${h.attempt} run ${h.runId} at ${iso(h.at)}`) });
    const runIds = new Set(mine.map((h) => h.runId));
    if (runIds.size > 1) issue("duplicated", `remote steps ran in ${runIds.size} runs: ${[...runIds].join(", ")}`);
    else if (run && runIds.size === 1 && !runIds.has(run.run_id)) issue("duplicated", `remote steps ran in run ${[...runIds][0]}, but the event's run is ${run.run_id}`);
    // A run resumed across a crash: it executed steps both before and after a kill.
    if (mine.length > 1 && killTimes.some((t) => t > mine[0].at && t < mine.at(-1).at)) stats.resumed++;
    const planned = scenario.remoteSteps;
    for (const h of mine) if (!planned.includes(h.step)) issue("duplicated", `remote step ${h.fn}/${h.step} ran, but the function has no such step`, [h]);
    for (const step of planned) {
      const seen = mine.filter((h) => h.step === step);
      stats.steps++;
      if (seen.length === 0) {
        issue("lost", `remote step ${want.fn}/${step} never ran`, []);
        continue;
      }
      let used = -1;
      for (let i = 1; i < seen.length; i++) {
        const k = killTimes.findIndex((t, j) => j > used && t >= seen[i - 1].at - slackMs && t <= seen[i].at);
        if (k < 0) {
          issue("duplicated", `remote step ${want.fn}/${step} ran ${seen.length} times, and no kill lies between execution ${i} and ${i + 1} (kills: ${killTimes.map(iso).join(", ")})`, seen);
          break;
        }
        used = k;
        stats.reruns.push({ root, step, runId: seen[i].runId, killAfterMs: killTimes[k] - seen[i - 1].at, rerunAfterKillMs: seen[i].at - killTimes[k] });
      }
      if (seen.length > 1) stats.ranAgain++;
    }
    if (run?.status === "Completed" && problems.length === before && !problems.some((p) => p.root === root)) stats.completed++;
  }
  return stats;
}
