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
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { isDeepStrictEqual, parseArgs, promisify } from "node:util";
import { childEnv, freePort, groupAlive, signalGroup, stopProcessGroup } from "../bench/lib/processes.mjs";
import { checkRemoteSteps, startApp, startProxy, syncApp } from "./app.mjs";
import { cronScenario, followUpScenario, remoteScenarios, runsOf, scenarios } from "./scenarios.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
/** The chaos Worker's config (bindings, main = chaos/index.ts); runs use a frozen build of it (see freezeWorker). */
const SOURCE_CONFIG = path.join(ROOT, "chaos", "wrangler.toml");
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const FINAL = new Set(["Completed", "Failed", "Cancelled"]);
/** A hit processed by the counter this long after a kill may still come from before it (event-loop lag). */
const HIT_CLOCK_SLACK_MS = 250;

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
/** Of the requests that send events, the share that goes through the service binding's `send`. */
const RPC_SEND_SHARE = 0.25;
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
const POLL_MS = 2_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (message) => console.log(`[chaos ${elapsed()}] ${message}`);

/** mulberry32: a small seeded generator, so a seed replays the same events, batches and kill delays. */
function makeRng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), between: (lo, hi) => lo + next() * (hi - lo) };
}


// ---------------------------------------------------------------------------------------------
// The counter: every step body POSTs { root, key, event, aim? } here before returning, key
// `<label>/<step>#<attempt>`. Answers after a random 0–150 ms, which widens the window in which a
// kill cuts a step mid-flight. A hit marked `aim` resolves a kill waiting for that root as soon as
// the counter answers it (kills aimed just after a step a `step.sendEvent` follows).

const hits = []; // { root, key, step, attempt, event, run, at }
/** root → resolvers of kills waiting for that root's next aimed hit to be answered. */
const aimWaiters = new Map();
const nextAimedHit = (root) => new Promise((resolve) => aimWaiters.set(root, [...(aimWaiters.get(root) ?? []), resolve]));

function startCounter() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
        const m = /^(.*)#(\d+)$/.exec(body.key);
        if (!m) throw new Error(`key ${body.key} has no #attempt`);
        hits.push({ root: body.root, key: body.key, step: m[1], attempt: Number(m[2]), event: body.event, run: body.run, at: Date.now() });
      } catch {
        res.writeHead(400).end();
        return;
      }
      setTimeout(() => {
        const waiting = body.aim ? aimWaiters.get(body.root) : undefined;
        if (waiting) {
          aimWaiters.delete(body.root);
          for (const resolve of waiting) resolve(body.key);
        }
        res.writeHead(204).end();
      }, Math.random() * 150);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() }));
  });
}

// ---------------------------------------------------------------------------------------------
// The dev server: detached in its own process group, so a kill takes wrangler, esbuild and workerd
// at once, as a machine losing power would. Only groups started here are ever signalled.

const outDir = fs.mkdtempSync(path.join("/tmp", `stepflare-chaos-${new Date().toISOString().replace(/[:.]/g, "-")}-`));
const persistDir = path.join(outDir, "state");
const CONFIG = path.join(outDir, "wrangler.toml");

/**
 * Builds chaos/index.ts once (`wrangler deploy --dry-run --outdir`) and writes a config next to the
 * build that serves it unbundled: every server life runs the same code, and an edit to sdk/ or
 * worker/ during a run cannot hot-reload the server (a reload drops Durable Objects mid-step, an
 * unplanned crash the checks would count as a duplicate). The config also tells the Worker where
 * the counter is (`CHAOS_COUNTER`), for the cron's runs, whose events carry no data of ours.
 */
async function freezeWorker(counterUrl) {
  const bundleDir = path.join(outDir, "bundle");
  await promisify(execFile)(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", bundleDir, "--config", SOURCE_CONFIG], {
    cwd: ROOT,
    env: childEnv,
    timeout: 120_000,
  });
  const source = fs.readFileSync(SOURCE_CONFIG, "utf8");
  const main = /^main = ".*"$/m;
  const migrations = /^migrations_dir = "(.*)"$/m;
  if (!main.test(source) || !migrations.test(source)) throw new Error(`${SOURCE_CONFIG}: expected a main and a migrations_dir line`);
  const migrationsDir = path.resolve(path.dirname(SOURCE_CONFIG), source.match(migrations)[1]);
  const vars = /^\[vars\]$/m;
  if (!vars.test(source)) throw new Error(`${SOURCE_CONFIG}: expected a [vars] section`);
  const frozen = source
    .replace(main, `main = "bundle/index.js"\nno_bundle = true`)
    .replace(migrations, `migrations_dir = ${JSON.stringify(migrationsDir)}`)
    .replace(vars, `[vars]\nCHAOS_COUNTER = ${JSON.stringify(counterUrl)}`);
  fs.writeFileSync(CONFIG, `# Written by chaos/run.mjs from chaos/wrangler.toml: serves the build in bundle/.\n${frozen}`);
}

let child = null;
let baseUrl = "";
let life = 0;
let up = false;
let upWaiters = [];
const killTimes = [];
/** Each server life: when it answered first, and when it was killed (null for the last). */
const lives = []; // { life, readyAt, killedAt }

process.on("exit", () => {
  if (child?.pid) signalGroup(child.pid, "SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (child?.pid) signalGroup(child.pid, "SIGKILL");
    process.exit(130);
  });
}

/** Starts the next server life; a start that fails (say, a port taken meanwhile) is tried again twice. */
async function startServer() {
  for (let tries = 1; ; tries++) {
    try {
      return await startServerOnce();
    } catch (err) {
      if (child?.pid) signalGroup(child.pid, "SIGKILL");
      child = null;
      if (tries >= 3) throw err;
      log(`server life ${life} did not start (${String(err.message).split("\n")[0]}); trying again`);
    }
  }
}

async function startServerOnce() {
  life++;
  const port = await freePort();
  const inspectorPort = await freePort();
  const logFile = path.join(outDir, `wrangler-${life}.log`);
  const fd = fs.openSync(logFile, "a");
  const args = [WRANGLER, "dev", "--config", CONFIG, "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", persistDir, "--show-interactive-dev-session=false"];
  const started = Date.now();
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: childEnv, detached: true, stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  child = proc;
  baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`wrangler dev exited (${proc.exitCode ?? proc.signalCode}); see ${logFile}`);
    try {
      const res = await fetch(`${baseUrl}/v1/functions`, { signal: AbortSignal.timeout(3_000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`wrangler dev not ready after 90 s; see ${logFile}`);
    await sleep(100);
  }
  up = true;
  lives.push({ life, readyAt: Date.now(), killedAt: null });
  for (const resolve of upWaiters) resolve();
  upWaiters = [];
  log(`server life ${life} ready on ${baseUrl} in ${Date.now() - started} ms`);
}

async function killServer() {
  const proc = child;
  up = false;
  const at = Date.now();
  killTimes.push(at);
  if (lives.length > 0) lives.at(-1).killedAt = at;
  signalGroup(proc.pid, "SIGKILL");
  const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((resolve) => proc.once("exit", resolve));
  await exited;
  const deadline = Date.now() + 10_000;
  while (groupAlive(proc.pid) && Date.now() < deadline) await sleep(20);
  if (groupAlive(proc.pid)) throw new Error(`process group ${proc.pid} still alive 10 s after SIGKILL`);
  child = null;
  return Date.now() - at;
}

async function stopServer() {
  if (!child) return;
  const proc = child;
  up = false;
  await stopProcessGroup(proc.pid);
  child = null;
}

const whenUp = () => (up ? Promise.resolve() : new Promise((resolve) => upWaiters.push(resolve)));

// ---------------------------------------------------------------------------------------------
// The plan: scenario instances until the target number of runs, sent in requests of 1–4 events,
// plus instances held back: one `chaos/derived` per kill aimed at a send (sent just before it), and
// a burst of one failing, one chain, one derived and one sleeping instance sent just before the
// outage, so that runs fail, send events and sleep while D1 or the Queue is down.

/**
 * Which kill is aimed where: the first just after a step body of the remote app begins, then every
 * third just after a step a send follows, one in three 0–40 ms after a request starts, the rest at random.
 */
const killKind = (k) => (k === 1 ? "remote" : k % 3 === 0 ? "send" : k % 3 === 2 ? "request" : "random");

function plan(rng, counterUrl, withOutage) {
  const totalWeight = scenarios.reduce((n, s) => n + s.weight, 0);
  const instances = [];
  let runs = 0;
  const make = (i, scenario) => {
    const root = `chaos-${String(i).padStart(3, "0")}-${scenario.event.split("/")[1]}`;
    const data = { ...scenario.data(i, rng, root), counter: counterUrl, root };
    runs += runsOf(scenario, data);
    const instance = { scenario, root, data };
    instances.push(instance);
    return instance;
  };
  // Every row at least once, then weighted picks.
  const main = [];
  let i = 0;
  for (; runs < TARGET_RUNS || i < scenarios.length; i++) {
    let scenario = scenarios[i];
    if (i >= scenarios.length) {
      let pick = rng.next() * totalWeight;
      scenario = scenarios.find((s) => (pick -= s.weight) < 0) ?? scenarios[0];
    }
    main.push(make(i, scenario));
  }
  for (let j = main.length - 1; j > 0; j--) {
    const k = rng.int(j + 1);
    [main[j], main[k]] = [main[k], main[j]];
  }
  // The concurrency: 3 runs go out together (at least 6 of them, in one request at a seeded place),
  // so that some wait for a slot, and slots are handed over across the kills.
  const limitedRow = scenarios.find((s) => s.event === "chaos/limited");
  const limitedBurst = main.filter((x) => x.scenario === limitedRow);
  while (limitedBurst.length < 6) limitedBurst.push(make(i++, limitedRow));
  main.splice(0, main.length, ...main.filter((x) => x.scenario !== limitedRow));
  // Requests: batches of events, a share of them through the service binding's `send`, and the
  // invocations (`invoke` through the binding) among them at seeded places.
  const requests = [];
  for (let j = 0; j < main.length; ) {
    const size = 1 + rng.int(4);
    requests.push({ batch: main.slice(j, j + size), via: rng.next() < RPC_SEND_SHARE ? "rpc" : "http" });
    j += size;
  }
  requests.splice(rng.int(requests.length + 1), 0, { batch: limitedBurst, via: "http" });
  const invokable = scenarios.filter((s) => s.invokable);
  const invocations = [];
  for (let n = 0; n < INVOKES; n++, i++) {
    const scenario = invokable[n % invokable.length];
    const root = `chaos-${String(i).padStart(3, "0")}-invoke-${scenario.event.split("/")[1]}`;
    const data = { ...scenario.data(i, rng), counter: counterUrl, root };
    const want = scenario.events(data, root, {}, { last: () => undefined })[0].runs[0];
    const invocation = { scenario, root, data, fn: want.fn, answer: null, sentAt: null };
    invocations.push(invocation);
    requests.splice(rng.int(requests.length + 1), 0, { invocation });
  }
  // Follow-ups (a wait's replies, a cancel): each in a request of its own, 1 before to 4 after its
  // trigger's request (a reply sent before its trigger is found by the wait's look back), or, for a
  // fifth of the replies, held back until the kills are over (`late`).
  const late = [];
  const followUps = [];
  for (const trigger of main) {
    for (const f of trigger.scenario.followUps?.(trigger.data, rng) ?? []) {
      const root = `${trigger.root}-${f.suffix}`;
      const instance = { scenario: followUpScenario(f.event), root, data: { ...f.data, counter: counterUrl, root }, trigger: trigger.root };
      instances.push(instance);
      if (f.event === "chaos/reply" && rng.next() < 0.2) {
        instance.late = true;
        late.push(instance);
        continue;
      }
      const at = requests.findIndex((r) => r.batch?.includes(trigger));
      const offset = f.event === "chaos/reply" ? rng.int(6) - 1 : 1 + rng.int(3);
      followUps.push({ at: Math.max(0, at + offset) + 0.5, request: { batch: [instance], via: rng.next() < RPC_SEND_SHARE ? "rpc" : "http" } });
    }
  }
  const placed = requests.map((request, n) => ({ at: n, request }));
  requests.splice(0, requests.length, ...[...placed, ...followUps].sort((x, y) => x.at - y.at).map((p) => p.request));
  const row = (event) => scenarios.find((s) => s.event === event);
  const aimed = [];
  for (let k = 1; k <= KILLS; k++) if (killKind(k) === "send") aimed.push(make(i++, row("chaos/derived")));
  const burst = withOutage ? ["chaos/fails", "chaos/chain", "chaos/derived", "chaos/steps"].map((event) => make(i++, row(event))) : [];
  return { instances, requests, invocations, runs, aimed, burst, late };
}

/**
 * The remote app's events: REMOTE_RUNS of them (every third the parallel function's), each with a
 * seeded moment in the kill window (`slot`, 0..1) and a way in (POST /e/chaos or the binding's
 * send). Drawn from a generator of their own, so a seed gives the same local plan, outage and kill
 * delays as before the remote runs came.
 */
function planRemote(rng) {
  return Array.from({ length: REMOTE_RUNS }, (_, j) => {
    const scenario = remoteScenarios[j % 3 === 2 ? 1 : 0];
    const root = `chaos-r${String(j).padStart(2, "0")}-${scenario.event.split("/")[1]}`;
    return { scenario, root, data: { ...scenario.data(j, rng), root }, slot: (j + rng.next()) / REMOTE_RUNS, via: rng.next() < RPC_SEND_SHARE ? "rpc" : "http" };
  });
}

// ---------------------------------------------------------------------------------------------
// Sending: one request at a time or two, all through the kills and the outage. A request the kill
// cut (or any answer but 200, like the 5xx of ingest while D1 or the Queue is down) is not accepted
// and is sent again later with the same event ids; an id answered with 200 must never be lost.

const accepted = new Map(); // root → { at, life }
const firstSent = new Map(); // root → when a request first carried it: nothing of it ran before
const sendStats = { requests: 0, ok: 0, cut: 0, refused: 0, refusedInOutage: 0, viaRpc: 0, okViaRpc: 0, cutIds: [], refusals: [] };

/** Resolvers waiting for the next request to start (aimed kills). */
let requestWaiters = [];
const nextRequestStart = () => new Promise((resolve) => requestWaiters.push(resolve));

/**
 * Sends one batch of events, to POST /e/chaos (`via` "http") or through the service binding's
 * `send` (`via` "rpc": POST /chaos/rpc/send, which answers what `send` answered); answers whether
 * every event was accepted.
 */
async function sendBatch(batch, via = "http") {
  const body = batch.map(({ scenario, root, data }) => ({ id: root, name: scenario.event, data }));
  for (const { root } of batch) if (!firstSent.has(root)) firstSent.set(root, Date.now());
  sendStats.requests++;
  if (via === "rpc") sendStats.viaRpc++;
  for (const resolve of requestWaiters) resolve();
  requestWaiters = [];
  const inOutage = outage.on;
  try {
    const res = await fetch(`${baseUrl}${via === "rpc" ? "/chaos/rpc/send" : "/e/chaos"}`, {
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
      for (const id of ids) if (!accepted.has(id)) accepted.set(id, { at: Date.now(), life });
      return true;
    }
    sendStats.refused++;
    sendStats.refusals.push({ at: new Date().toISOString(), life, status: res.status, ids, outage: inOutage || outage.on });
    // Refusals during the outage are expected (and many): counted, not logged one by one.
    if (inOutage || outage.on) sendStats.refusedInOutage++;
    else log(`${via === "rpc" ? "send() through the service binding" : "POST /e/chaos"} answered ${res.status} in server life ${life} (sent again later): ${JSON.stringify(answer).slice(0, 200)}`);
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
async function sendInvoke(invocation) {
  invocation.sentAt = Date.now();
  firstSent.set(invocation.root, invocation.sentAt);
  sendStats.requests++;
  sendStats.invokes = (sendStats.invokes ?? 0) + 1;
  const inOutage = outage.on;
  try {
    const res = await fetch(`${baseUrl}/chaos/rpc/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ functionId: invocation.fn, data: invocation.data }),
      signal: AbortSignal.timeout(20_000),
    });
    const answer = await res.json().catch(() => ({}));
    if (res.status === 200 && answer.status === 200 && typeof answer.runId === "string") invocation.answer = { runId: answer.runId, life };
    else invocation.answer = { refused: res.status, error: answer.error, outage: inOutage || outage.on, life };
  } catch (err) {
    invocation.answer = { cut: true, error: String(err), life };
  }
}

async function sendAll(requests, intervalMs) {
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
async function sendUntilAccepted(batch) {
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
async function sendRemote(remote, windowMs, flush) {
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

// ---------------------------------------------------------------------------------------------
// The outage: the dev server's fault switch (`POST /v1/dev/faults`, dev mode only) makes every D1
// call and/or every Queue send fail while it is on. It lives in the server's memory, so a kill
// would end it: no kill comes while it is on.

const outage = { on: false, plan: null, startedAt: null, endedAt: null, burstAcceptedAt: null };

/** Sets the fault switch; throws (ending the chaos run) if the server has none or does not obey. */
async function setFaults(change) {
  let res;
  let text;
  for (let tries = 1; ; tries++) {
    try {
      res = await fetch(`${baseUrl}/v1/dev/faults`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(change),
        signal: AbortSignal.timeout(10_000),
      });
      text = await res.text();
      break;
    } catch (err) {
      if (tries >= 3) throw new Error(`POST /v1/dev/faults ${JSON.stringify(change)} failed: ${err.message}`);
      await sleep(500);
    }
  }
  if (res.status !== 200) {
    throw new Error(
      `POST /v1/dev/faults ${JSON.stringify(change)} answered ${res.status} (${text.slice(0, 200)}): this dev server has no fault switch, ` +
        "so the outage phase cannot run (node chaos/run.mjs --outage off runs without it)",
    );
  }
  const state = JSON.parse(text).data;
  for (const [binding, on] of Object.entries(change)) {
    if (state?.[binding] !== on) throw new Error(`POST /v1/dev/faults ${JSON.stringify(change)} answered ${text.slice(0, 200)}: the switch did not take`);
  }
  return state;
}

/**
 * Sends the burst, waits until its runs are under way, takes the planned bindings down for the
 * planned time while the sending goes on, and brings them back.
 */
async function runOutage(burst) {
  const { which, leadMs, durationMs } = outage.plan;
  await Promise.all(burst.map((instance) => sendUntilAccepted([instance])));
  outage.burstAcceptedAt = Date.now();
  // Long enough for the burst's runs to start; short enough that their sleeps end during the outage.
  await sleep(leadMs);
  const change = Object.fromEntries(which.map((binding) => [binding, true]));
  await setFaults(change);
  outage.on = true;
  outage.startedAt = Date.now();
  log(`outage: ${which.join(" and ")} down for ${(durationMs / 1000).toFixed(1)} s (server life ${life})`);
  await sleep(durationMs);
  await setFaults(Object.fromEntries(which.map((binding) => [binding, false])));
  outage.on = false;
  outage.endedAt = Date.now();
  log(`outage over: ${which.join(" and ")} back up; ${sendStats.refusedInOutage} requests refused meanwhile (sent again)`);
}

// ---------------------------------------------------------------------------------------------
// The minute: the cron function (chaos-cron, `* * * * *`) runs once per minute boundary, started
// by the Scheduler's alarm, which fires at the minute. Its first tick runs when the first server
// life answers its first request (the Scheduler ticks at once when first armed), so the crons are
// stored from then on. Kills aimed at a minute: "before" comes 0.5–2.5 s ahead of the boundary, so
// the server is down when the alarm is due and the tick runs after the restart; "after" comes
// 5–40 ms (short) or 5–80 ms (full) past it, cutting the tick (or the run it started) mid-flight,
// so the tick runs again from its retry alarm. A kill at a minute comes when its boundary does:
// before a regular kill whose moment (or restart) it precedes, before an outage it would fall in,
// or after all the regular kills.

const MINUTE_MS = 60_000;
/** About how long a kill and restart take: a kill at a minute that would fall within one goes first. */
const RESTART_MS = 5_000;
/** A boundary this close to the first tick may or may not be one its crons were stored for. */
const FIRST_TICK_SLACK_MS = 2_000;
/** How long after its minute a cron run may still be under way when the runs are checked. */
const CRON_RUN_GRACE_MS = 20_000;
const minuteKills = []; // { kind, offsetMs, boundary?, killAt?, upAt?, life? }
const isoMinute = (t) => new Date(t).toISOString().slice(11, 19);

/** The first minute boundary whose schedule the first tick stored: the cron check starts there. */
function cronWindowStart() {
  return Math.ceil((lives[0].readyAt + FIRST_TICK_SLACK_MS) / MINUTE_MS) * MINUTE_MS;
}

/**
 * Makes the planned minute kills whose moment comes within `horizonMs` (in order, each at a later
 * boundary than the one before), restarting the server after each; Infinity waits for them all.
 */
async function minuteKillsWithin(horizonMs) {
  for (const plan of minuteKills) {
    if (plan.killAt) continue;
    const previous = Math.max(0, ...minuteKills.filter((m) => m.boundary).map((m) => m.boundary));
    const earliest = Math.max(Date.now() + 500 - plan.offsetMs, cronWindowStart(), previous + MINUTE_MS);
    const boundary = Math.ceil(earliest / MINUTE_MS) * MINUTE_MS;
    const at = boundary + plan.offsetMs;
    if (at > Date.now() + horizonMs) return;
    await sleep(at - Date.now());
    const killMs = await killServer();
    Object.assign(plan, { boundary, killAt: killTimes.at(-1), life });
    const off = plan.killAt - boundary;
    log(
      `kill -9 #m${minuteKills.indexOf(plan) + 1} ${off < 0 ? `${(-off / 1000).toFixed(1)} s before` : `${off} ms after`} the minute ${isoMinute(boundary)} ` +
        `(server life ${life}, its group gone in ${killMs} ms); ${accepted.size} events accepted so far`,
    );
    await startServer();
    plan.upAt = lives.at(-1).readyAt;
  }
}

// ---------------------------------------------------------------------------------------------
// Checking, over the REST API.

async function getJson(urlPath) {
  for (let tries = 0; ; tries++) {
    try {
      const res = await fetch(`${baseUrl}${urlPath}`, { signal: AbortSignal.timeout(15_000) });
      return { status: res.status, body: await res.json() };
    } catch (err) {
      if (tries >= 3) throw err;
      await sleep(500);
    }
  }
}

/** Runs `fn` over `items`, `limit` at a time (two cores: keep the server breathing). */
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

/** For a row's `events`: the highest attempt at which each step body of `root` ran. */
function seenFor(root) {
  return {
    last(step) {
      const attempts = hits.filter((h) => h.root === root && h.step === step).map((h) => h.attempt);
      return attempts.length ? Math.max(...attempts) : undefined;
    },
  };
}

/**
 * Walks the events an instance leads to; answers { settled, events: [{ id, expected, status, runs }] }.
 * Settled: every expected event has at least its expected number of runs, all in a final state.
 * Each event's expectation is the row's answer once the runs before it are known (an output may
 * name ids derived from a run id).
 */
async function observe(instance) {
  const found = {};
  const events = [];
  let settled = true;
  const seen = seenFor(instance.root);
  let listed = instance.scenario.events(instance.data, instance.root, found, seen);
  for (let i = 0; i < listed.length; i++) {
    const { id } = listed[i];
    const { status, body } = await getJson(`/v1/events/${encodeURIComponent(id)}/runs`);
    const runs = status === 200 ? body.data : [];
    for (const run of runs) found[run.function_id] ??= run;
    // A later event's id may depend on a run just found (`<run_id>-failed`, a derived id).
    listed = instance.scenario.events(instance.data, instance.root, found, seen);
    const expected = listed[i];
    events.push({ id, expected, status, runs });
    if (status !== 200 || runs.length < expected.runs.length || !runs.every((r) => FINAL.has(r.status))) settled = false;
  }
  return { settled, events };
}

async function settle(instances) {
  const deadline = Date.now() + SETTLE_MS;
  let open = instances;
  while (open.length > 0 && Date.now() < deadline) {
    const results = await pool(open, 4, observe);
    open = open.filter((_, i) => !results[i].settled);
    if (open.length === 0) break;
    log(`settling: ${instances.length - open.length}/${instances.length} events settled (e.g. ${open.slice(0, 3).map((x) => x.root).join(", ")})`);
    await sleep(POLL_MS);
  }
  return open;
}

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
function explainAttempts(seen, planned, notBefore = -Infinity) {
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

/** Map.groupBy (Node 21+), for Node 20. */
function groupBy(items, keyOf) {
  const groups = new Map();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

function issue(list, kind, root, detail) {
  list.push({ kind, root, ...detail });
}

/**
 * Checks one run found for `want` (a row's expected run) against it: final state, output, error,
 * stored steps, and each stored step's attempts against the executions the counter saw (`mine`,
 * the hits of the run's root). Problems go to `out.problems`; sends a kill cut to `out.sendCuts`.
 */
async function checkRun(root, id, want, run, mine, out, detailPath = `/v1/runs/${run.run_id}`) {
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
  // A cancelled run's sleep or wait is cleared where it stood.
  const unfinished = steps.filter((s) => s.status !== "Completed" && !(want.status === "Failed" && s.status === "Failed") && want.status !== "Cancelled");
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
function checkEffects(root, planned, mine, notBefore, out) {
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
    const verdict = explainAttempts(seen, planned[step] ?? 0, notBefore);
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

async function verify(instances) {
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

/** The runs the counter saw for `root`: the distinct run ids of its hits. */
const runIdsOfRoot = (root) => [...new Set(hits.filter((h) => h.root === root).map((h) => h.run))];

/**
 * Waits, cancellations and flow control, beyond the per-row checks: what the replies and cancels
 * met, and for `chaos-limited` (concurrency: 3) how many `work` bodies executed at once. Each body
 * is executing from its hit until `workMs` later (it sleeps that long after the counter answers),
 * or until a kill ends it; more than 3 such windows at one moment is a slot given twice ("wrong").
 */
function checkCoordination(instances, out) {
  const byRoot = new Map(instances.map((x) => [x.root, x]));
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
const invocationsByRoot = new Map();

/** The run ids an invocation may have started: the one it was answered, or those its hits name. */
const invocationRunIds = (invocation) => [...new Set([...(invocation.answer?.runId ? [invocation.answer.runId] : []), ...runIdsOfRoot(invocation.root)])];

/**
 * Whether every run that `runIds` names is in a final state, as the REST API shows it (from the
 * runs index), or with `binding`, as the service binding's `getRun` does (from the run's object).
 */
async function runsFinal(runIds, binding = false) {
  for (const runId of runIds) {
    const { status, body } = await getJson(binding ? `/chaos/rpc/runs/${runId}` : `/v1/runs/${runId}`);
    if (status !== 200 || !FINAL.has(body.data?.status)) return false;
  }
  return true;
}

/** The minute boundaries the cron check covers: from the first the first tick stored, to `end`. */
function cronMinutes(end) {
  const minutes = [];
  for (let t = cronWindowStart(); t <= end; t += MINUTE_MS) minutes.push(t);
  return minutes;
}

/**
 * After the events settled: waits (until `deadline`) for the runs of the invocations and of the
 * cron minutes to be over. Answers what is still not.
 */
async function settleOthers(invocations, minutes, deadline) {
  let open = [
    ...invocations.map((invocation) => ({ what: invocation.root, runIds: () => invocationRunIds(invocation), binding: true })),
    ...minutes.map((t) => ({ what: cronScenario.root(t), runIds: () => [cronScenario.runId(t)], binding: false })),
  ];
  while (open.length > 0) {
    const done = await pool(open, 4, (item) => runsFinal(item.runIds(), item.binding));
    open = open.filter((_, i) => !done[i]);
    if (open.length === 0 || Date.now() > deadline) break;
    log(`settling: ${open.length} invoked or cron runs not over (e.g. ${open.slice(0, 3).map((o) => o.what).join(", ")})`);
    await sleep(POLL_MS);
  }
  return open.map((o) => o.what);
}

/**
 * The runs started through the service binding's `invoke`, read through its `getRun` (from the
 * run's object). One the call answered with a run id ran once: that run, in the runs index too,
 * in its row's final state, with its steps' attempts explained, and no other run of its root. One
 * a kill or the outage cut (no answer, or an error answered) ran at most once: at most one run id
 * among its root's hits, and that run checked the same way. `invoke` starts the run before it
 * writes the runs index, so such a run may be missing from the index (counted, not a problem: the
 * caller never learned its id).
 */
async function verifyInvocations(invocations, out) {
  const stats = { answered: 0, cut: 0, refused: 0, startedAnyway: 0, startedAnywayUnindexed: 0 };
  await pool(invocations, 4, async (invocation) => {
    const { root, scenario, data, answer } = invocation;
    const mine = hits.filter((h) => h.root === root);
    const want = scenario.events(data, root, {}, seenFor(root))[0].runs[0];
    const ran = runIdsOfRoot(root);
    if (answer?.runId) stats.answered++;
    else if (answer?.cut) stats.cut++;
    else stats.refused++;
    if (ran.length > 1) issue(out.problems, "duplicated", root, { what: `invoke(${invocation.fn}) started ${ran.length} runs: ${ran.join(", ")}` });
    const others = answer?.runId ? ran.filter((id) => id !== answer.runId) : [];
    if (answer?.runId && others.length > 0) issue(out.problems, "duplicated", root, { what: `invoke(${invocation.fn}) answered run ${answer.runId}, but run(s) ${others.join(", ")} ran too` });
    const runId = answer?.runId ?? ran[0];
    if (!runId) return; // a call cut before it started anything
    out.runIds.add(runId);
    const indexed = (await getJson(`/v1/runs/${runId}`)).status === 200;
    if (!answer?.runId) {
      stats.startedAnyway++;
      if (!indexed) stats.startedAnywayUnindexed++;
    } else if (!indexed) issue(out.problems, "lost", root, { what: `invoke(${invocation.fn}) answered run ${runId}, but GET /v1/runs/${runId} does not find it` });
    const detailPath = `/chaos/rpc/runs/${runId}`;
    const { status, body } = await getJson(detailPath);
    if (status !== 200) {
      issue(out.problems, "lost", root, { what: `invoke(${invocation.fn}) ${answer?.runId ? "answered" : "started"} run ${runId}, but getRun through the binding answered ${status}` });
      return;
    }
    if (body.data.function_id !== want.fn) issue(out.problems, "wrong", root, { what: `run ${runId} is a run of ${body.data.function_id}, not ${want.fn}` });
    await checkRun(root, "invoke", want, body.data, mine, out, detailPath);
    checkEffects(root, scenario.effects(data), mine, invocation.sentAt, out);
  });
  return stats;
}

/**
 * The cron: for every minute boundary in `minutes` (the run spanned them, with the server up or
 * killed across them) the run of that scheduled time ran exactly once: its run (the id derives
 * from function, cron and time) is Completed with its output, its step's attempts are explained,
 * and no other run reported that time. Every other scheduled time the counter saw (a minute
 * before the window, or one after it) ran at most once. Answers each minute's report.
 */
async function verifyCron(minutes, out) {
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

/**
 * The event log as the server left it, against what each row leads to: every event a root leads
 * to is stored once (so an event `step.sendEvent` sent again after a crash, its id derived or
 * given, was deduplicated), and no other event names the root (one a re-run sent with a new id).
 * Only roots whose runs were all found are checked: a missing run is already reported as lost.
 */
function checkEventLog(rows, expectedEvents, problems) {
  const byRoot = groupBy(rows.filter((r) => r.root), (r) => r.root);
  for (const [root, ids] of expectedEvents) {
    const stored = byRoot.get(root) ?? [];
    for (const row of stored) {
      if (row.n > 1) issue(problems, "duplicated", root, { what: `the event log holds event ${row.id} (${row.name}) ${row.n} times` });
      if (!ids.includes(row.id)) issue(problems, "duplicated", root, { what: `the event log holds event ${row.id} (${row.name}), which the row never sends` });
    }
    for (const id of ids) if (!stored.some((r) => r.id === id)) issue(problems, "lost", root, { what: `event ${id} is not in the event log read from D1` });
  }
}

/**
 * The D1 event log and runs index, read from the persisted state: how many runs each status has in
 * the index, and events never marked dispatched. The REST API reads a run's status from its Durable
 * Object, so a stale index row is not a lost run; it is reported as what it is.
 */
async function readD1() {
  // One `wrangler d1 execute` per list of statements: each costs seconds to start.
  const query = async (...statements) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [WRANGLER, "d1", "execute", "DB", "--local", "--config", CONFIG, "--persist-to", persistDir, "--json", "--command", statements.join(";\n")],
      { cwd: ROOT, env: childEnv, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const answers = JSON.parse(stdout).map((answer) => answer.results);
    if (answers.length !== statements.length) throw new Error(`wrangler d1 execute answered ${answers.length} results for ${statements.length} statements`);
    return answers;
  };
  try {
    const [runs, undispatched, stale, eventLog, allRuns] = await query(
      "SELECT status, COUNT(*) AS n FROM runs GROUP BY status",
      "SELECT id FROM events WHERE dispatched_at IS NULL",
      "SELECT * FROM runs WHERE status NOT IN ('Completed', 'Failed', 'Cancelled')",
      // Every event with the root it belongs to (a failure event carries the failed run's event).
      "SELECT id, name, COALESCE(json_extract(data, '$.root'), json_extract(data, '$.event.data.root')) AS root, COUNT(*) AS n FROM events GROUP BY id, name, root",
      "SELECT id, function_id, event_id, status FROM runs",
    );
    const eventIds = [...new Set(stale.map((r) => r.event_id))];
    const [staleEvents] = eventIds.length
      ? await query(`SELECT id, received_at, dispatched_at FROM events WHERE id IN (${eventIds.map((id) => `'${id.replace(/'/g, "''")}'`).join(",")})`)
      : [[]];
    for (const row of stale) row.eventRow = staleEvents.find((e) => e.id === row.event_id) ?? null;
    return { runsIndexByStatus: Object.fromEntries(runs.map((r) => [r.status, r.n])), undispatchedEvents: undispatched.map((r) => r.id), unfinishedInIndex: stale, eventLog, allRuns };
  } catch (err) {
    return { error: String(err) };
  }
}

/**
 * What the wrangler logs say: sweeps that re-enqueued lost events, deliveries the outage made
 * wait, errors (lines about the injected faults are counted, not listed).
 */
function scanLogs() {
  let reenqueued = 0;
  let sweeps = 0;
  let faultLines = 0;
  let outboxRetries = 0;
  let endRetries = 0;
  const reloads = [];
  const errors = [];
  for (let i = 1; i <= life; i++) {
    const file = path.join(outDir, `wrangler-${i}.log`);
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      if (line.includes("Reloading local server")) reloads.push(`life ${i}`);
      const m = line.match(/"message":"re-enqueued undispatched events","count":(\d+)/);
      if (m) {
        sweeps++;
        reenqueued += Number(m[1]);
      }
      if (line.includes("could not deliver the run's events")) outboxRetries++;
      if (line.includes("could not queue the run's end")) endRetries++;
      if (/InjectedFaultError|fault injected/.test(line)) {
        faultLines++;
        continue;
      }
      if (/"level":"error"|✘ \[ERROR\]|Uncaught|Error:/.test(line) && !/Request\.cf|workers\.cloudflare\.com|getaddrinfo/.test(line)) errors.push(`life ${i}: ${line.slice(0, 400)}`);
    }
  }
  return { reenqueued, sweeps, errors, reloads, faultLines, outboxRetries, endRetries };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const rng = makeRng(SEED);
  log(`mode ${SHORT ? "short" : "full"}: ${TARGET_RUNS} runs, ${KILLS} kills, seed ${SEED}; logs in ${outDir}`);
  // The outage, drawn first so that a seed gives the same outage whatever the other options.
  const downs = [["d1"], ["queue"], ["d1", "queue"]];
  const drawn = { which: downs[rng.int(3)], afterKill: 1 + rng.int(KILLS - 1), leadMs: rng.between(300, 1500), durationMs: rng.between(...OUTAGE_MS) };
  const modes = { d1: ["d1"], queue: ["queue"], both: ["d1", "queue"] };
  if (opts.outage !== "off") outage.plan = { ...drawn, ...(modes[opts.outage] ? { which: modes[opts.outage] } : {}) };
  const counter = await startCounter();
  const { instances, requests, invocations, runs, aimed, burst, late: lateReplies } = plan(rng, counter.url, outage.plan !== null);
  const batches = requests.filter((r) => r.batch);
  // The remote app's runs, from a generator of their own: a seed gives the same local plan and kill delays.
  const remote = planRemote(makeRng(SEED ^ 0x5eed));
  log(
    `${instances.length} events (${runs} runs) in ${batches.length} requests (${batches.filter((r) => r.via === "rpc").length} through the service binding's send), ` +
      `${aimed.length + burst.length} of them sent alone at aimed kills and before the outage; ${invocations.length} runs started through its invoke; ` +
      `${remote.length} runs of the remote app's functions, one event a request`,
  );
  instances.push(...remote);
  // The remote app lives in this process, across the kills; it calls Stepflare back through the proxy.
  const proxy = await startProxy(() => baseUrl);
  const app = await startApp(proxy.url, path.join(outDir, "app.log"));
  if (outage.plan) log(`outage planned after kill #${outage.plan.afterKill}: ${outage.plan.which.join(" and ")} down for ${(outage.plan.durationMs / 1000).toFixed(1)} s`);
  const kills = Array.from({ length: KILLS }, (_, i) => ({ kind: killKind(i + 1), waitMs: rng.between(300, 3000), aimMs: killKind(i + 1) === "send" ? rng.between(0, 8) : rng.between(0, 40) }));
  // Kills at a minute: the short run has one, before or after its boundary (from the seed); the
  // full run one of each, at two boundaries (--minute picks).
  const pick = rng.int(2);
  const minuteKinds = { before: ["before"], after: ["after"], both: pick === 0 ? ["before", "after"] : ["after", "before"], auto: SHORT ? [pick === 0 ? "before" : "after"] : null }[opts.minute] ?? (pick === 0 ? ["before", "after"] : ["after", "before"]);
  // "after": 5–40 ms short, within the tick's first reads, so that mostly the tick is cut, not the
  // cron's run (whose cut step would add a retry backoff to the run's length); 5–80 ms full.
  for (const kind of minuteKinds) minuteKills.push({ kind, offsetMs: kind === "before" ? -rng.between(500, 2500) : rng.between(5, SHORT ? 40 : 80) });
  log(`kills at a minute planned: ${minuteKills.map((m) => (m.offsetMs < 0 ? `${(-m.offsetMs / 1000).toFixed(1)} s before` : `${m.offsetMs.toFixed(0)} ms after`)).join(", ")} a boundary`);

  await freezeWorker(counter.url);
  await promisify(execFile)(process.execPath, [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--config", CONFIG, "--persist-to", persistDir], {
    cwd: ROOT,
    env: childEnv,
    timeout: 120_000,
  });
  await startServer();
  // Fails now, not halfway, if this server has no fault switch.
  if (outage.plan) await setFaults({});
  const synced = await syncApp(baseUrl, app.url);
  const wantFunctions = remoteScenarios.map((s) => s.events({}, "x")[0].runs[0].fn);
  if (!wantFunctions.every((id) => synced.functions.includes(id))) throw new Error(`the remote app synced ${JSON.stringify(synced.functions)}, expected ${JSON.stringify(wantFunctions)}`);
  log(`remote app synced (${app.url}, calling back through ${proxy.url}): ${synced.functions.join(", ")}${synced.tries > 1 ? ` (after ${synced.tries} tries)` : ""}`);

  // Spread the requests over about half the time the kills take (a server life of 0.3–3 s, then
  // about 3.5 s to kill and restart), so crashes land in ingest and dispatch too.
  const intervalMs = Math.min(1000, Math.max(30, (KILLS * 2500) / requests.length));
  let sendingDone = false;
  const sending = sendAll(requests, intervalMs).then(() => (sendingDone = true));
  // The remote events: spread over about the time the kills (and the outage) take.
  let flushRemote;
  const remoteFlush = new Promise((resolve) => (flushRemote = resolve));
  const remoteWindowMs = KILLS * 6_500 + (outage.plan ? outage.plan.leadMs + outage.plan.durationMs : 0);
  const remoteSending = sendRemote(remote, remoteWindowMs, remoteFlush);
  const heldBack = [];
  const sendStart = Date.now();
  const aimedKills = [];
  const remoteAims = [];
  for (let k = 1; k <= KILLS; k++) {
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
    } else if (kind === "send") {
      // Aimed at a send: a held-back chaos/derived instance goes out now, and the kill comes
      // 0–8 ms after the counter answers its first step, the window in which that step's result,
      // the `step.sendEvent` after it and the delivery of its events (D1, then the queue) commit.
      const instance = aimed.shift();
      const answered = nextAimedHit(instance.root);
      heldBack.push(sendUntilAccepted([instance]));
      const hit = await Promise.race([answered.then(() => true), sleep(10_000).then(() => false)]);
      if (hit) {
        await sleep(aimMs);
        how = `${aimMs.toFixed(0)} ms after ${instance.root}'s first step (a send follows) returned`;
        aimedKills.push({ kill: k, root: instance.root, afterMs: aimMs });
      } else how = `at a random moment (${instance.root}'s first step did not run within 10 s)`;
    }
    const killMs = await killServer();
    log(`kill -9 #${k} ${how} (server life ${life}, its group gone in ${killMs} ms); ${accepted.size}/${instances.length} events accepted so far`);
    await startServer();
    if (outage.plan && k === outage.plan.afterKill) {
      // A minute that would pass during the outage (no kill can come then) gets its kill first.
      await minuteKillsWithin(outage.plan.leadMs + outage.plan.durationMs + RESTART_MS);
      await runOutage(burst);
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
    `all ${instances.length} events accepted in ${((chaosEnd - sendStart) / 1000).toFixed(1)} s (${sendStats.requests} requests, ${sendStats.cut} cut by a kill, ` +
      `${sendStats.refused} refused${outage.plan ? `, ${sendStats.refusedInOutage} of them during the outage` : ""})`,
  );

  const unsettled = await settle(instances);
  const settledAfterMs = unsettled.length > 0 ? null : Date.now() - chaosEnd;
  if (unsettled.length > 0) log(`${unsettled.length} events not settled ${((Date.now() - chaosEnd) / 1000).toFixed(0)} s after the last kill (deadline ${SETTLE_MS / 1000} s)`);
  else log(`every event settled, ${((Date.now() - chaosEnd) / 1000).toFixed(0)} s after the last kill${outage.plan ? " and the outage" : ""}`);
  // The cron minutes checked: every boundary from the first tick's to the last one long enough
  // ago for its run to be over (and at least those the kills at a minute aimed at).
  const minutes = cronMinutes(Math.max(...minuteKills.map((m) => m.boundary ?? 0), Math.floor((Date.now() - CRON_RUN_GRACE_MS) / MINUTE_MS) * MINUTE_MS));
  const openOthers = await settleOthers(invocations, minutes, chaosEnd + SETTLE_MS);
  if (openOthers.length > 0) log(`${openOthers.length} invoked or cron runs not over by the deadline: ${openOthers.slice(0, 5).join(", ")}`);
  // A little grace, so a step that would run a second time after the end is counted too.
  await sleep(2_000);
  log(`checking the events, the invocations and ${minutes.length} cron minutes`);
  const out = await verify(instances);
  const invokeStats = await verifyInvocations(invocations, out);
  const cronReport = await verifyCron(minutes, out);
  for (const invocation of invocations) invocationsByRoot.set(invocation.root, invocation);
  const coordination = checkCoordination(instances, out);
  const remoteStats = checkRemoteSteps(remote, app.hits, killTimes, out.found, out.problems, HIT_CLOCK_SLACK_MS);
  // Where a kill aimed at a remote step landed: before its result was stored (it ran again), or after.
  for (const aim of remoteAims) aim.landed = remoteStats.reruns.some((r) => r.root === aim.root && r.step === aim.step) ? "the step ran again" : "its result was stored";
  const { problems, runsSeen, reruns, sendCuts, runStates, expectedEvents } = out;
  const resumed = out.resumed.size;
  const { reenqueued, sweeps, errors, reloads, faultLines, outboxRetries, endRetries } = scanLogs();
  // Where each kill aimed at a send landed, as far as the run tells: before the step before the
  // send stored its result (it ran again), in the send (its step took two attempts), or after it.
  for (const aim of aimedKills) {
    if (reruns.some((r) => r.root === aim.root && r.step === "chaos-derived/work")) aim.landed = "before the first step stored its result";
    else if (sendCuts.some((c) => c.root === aim.root && c.step === "emit")) aim.landed = "in the send";
    else aim.landed = "after the send was stored";
  }

  const report = {
    mode: SHORT ? "short" : "full",
    seed: SEED,
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
  fs.writeFileSync(path.join(outDir, "report.json"), JSON.stringify(report, null, 2));
  fs.writeFileSync(path.join(outDir, "hits.json"), JSON.stringify(hits, null, 1));
  fs.writeFileSync(path.join(outDir, "remote-hits.json"), JSON.stringify(app.hits, null, 1));
  fs.writeFileSync(path.join(outDir, "events.json"), JSON.stringify(instances.map(({ scenario, root, data }) => ({ root, scenario: scenario.name, data, accepted: accepted.get(root) })), null, 1));

  await stopServer();
  counter.close();
  await app.stop();
  await proxy.close();
  // The D1 runs index and event log as the server left them (read with the server stopped).
  report.d1 = await readD1();
  if (report.d1.eventLog) checkEventLog(report.d1.eventLog, expectedEvents, problems);
  else issue(problems, "wrong", "-", { what: `could not read the event log from D1 to check it: ${report.d1.error}` });
  // Every run in the runs index is one the checks account for: an expected event's, an
  // invocation's, or the cron's for a minute (any minute since the first tick, for the cron: the
  // server ticked until it stopped).
  const cronRunIds = new Set();
  for (let t = cronWindowStart() - 2 * MINUTE_MS; t <= Date.now() + MINUTE_MS; t += MINUTE_MS) cronRunIds.add(cronScenario.runId(t));
  for (const row of report.d1.allRuns ?? []) {
    if (out.runIds.has(row.id) || (row.function_id === cronScenario.fn && cronRunIds.has(row.id))) continue;
    issue(problems, FINAL.has(row.status) ? "duplicated" : "lost", row.event_id, { what: `the runs index holds run ${row.id} (${row.function_id}, event ${row.event_id}, ${row.status}), which no check accounts for` });
  }
  delete report.d1.allRuns;
  // For a run the index still thinks unfinished: what its object says, and the kill that followed its end.
  for (const row of report.d1.unfinishedInIndex ?? []) {
    const state = runStates.get(row.id);
    row.object = state ?? null;
    const ended = state?.ended_at ? Date.parse(state.ended_at) : NaN;
    const kill = killTimes.find((k) => k >= ended);
    row.killAfterEndMs = Number.isFinite(ended) && kill !== undefined ? kill - ended : null;
  }
  const count = (kind) => problems.filter((p) => p.kind === kind).length;
  const lost = count("lost");
  const duplicated = count("duplicated");
  const wrong = count("wrong");
  Object.assign(report, { seconds: (Date.now() - t0) / 1000, lost, duplicated, wrong });
  fs.writeFileSync(path.join(outDir, "report.json"), JSON.stringify(report, null, 2));
  const failed = lost + duplicated + wrong > 0;
  if (!failed && !opts.keep) for (const dir of ["state", "bundle", ".wrangler"]) fs.rmSync(path.join(outDir, dir), { recursive: true, force: true });

  for (const p of problems.slice(0, 30)) console.log(`  ${p.kind}: ${p.root}: ${p.what}${p.hits ? ` (${p.hits.join(", ")})` : ""}`);
  if (problems.length > 30) console.log(`  … ${problems.length - 30} more in ${path.join(outDir, "report.json")}`);
  if (reloads.length > 0) log(`warning: wrangler reloaded the server without a kill (${reloads.join(", ")}): a reload drops objects mid-step like a crash the checks do not know of`);
  if (errors.length > 0) log(`${errors.length} error lines in the wrangler logs (first: ${errors[0]})`);
  const ran = reruns.filter((r) => r.ran);
  const latestCut = Math.max(0, ...ran.map((r) => r.killAfterMs));
  // A step's result is stored within milliseconds of its body returning (the counter answers in
  // ≤ 150 ms): a second execution whose kill came much later points at a result that was not durable.
  const late = ran.filter((r) => r.killAfterMs > 2_000);
  if (late.length > 0) log(`warning: ${late.length} step bodies ran again although the kill came > 2 s after their execution: ${JSON.stringify(late.slice(0, 5))}`);
  const soonest = Math.min(...reruns.map((r) => r.rerunAfterKillMs));
  log(
    `${sendStats.cut} requests cut by a kill; ${reruns.length} step attempts ended by a kill (${ran.length} cut mid-flight${ran.length ? `, each killed ≤ ${latestCut} ms after it ran` : ""}` +
      `${reruns.length ? `; the next attempt ran ${(soonest / 1000).toFixed(0)}–${(Math.max(...reruns.map((r) => r.rerunAfterKillMs)) / 1000).toFixed(0)} s after the kill` : ""}); ` +
      `${sendCuts.length} sendEvent steps cut; ${aimedKills.length ? `kills aimed at a send landed ${aimedKills.map((a) => a.landed).join(", ")}; ` : ""}${resumed} runs resumed across a crash; ${reenqueued} events re-enqueued by ${sweeps} sweeps`,
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
      `D1 after the run: runs index ${JSON.stringify(report.d1.runsIndexByStatus)}, ${report.d1.undispatchedEvents.length} events never marked dispatched, ` +
        `${report.d1.eventLog.length} events in the log` +
        (staleIndex.length ? ` (warning: the index misses the end of ${staleIndex.length} runs their objects say are over: ${staleIndex.slice(0, 3).map((r) => r.id).join(", ")})` : ""),
    );
  } else log(`could not read D1: ${report.d1.error}`);
  log(
    `service binding: ${sendStats.viaRpc} requests through send() (${sendStats.okViaRpc} accepted, the rest sent again); ${invocations.length} invoke() calls: ` +
      `${invokeStats.answered} answered a run id, ${invokeStats.cut} cut by a kill, ${invokeStats.refused} answered an error; ${invokeStats.startedAnyway} of the unanswered ones started their run all the same` +
      `${invokeStats.startedAnyway ? ` (${invokeStats.startedAnywayUnindexed} of them missing from the runs index)` : ""}`,
  );
  log(`report in ${path.join(outDir, "report.json")}; done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const c = coordination;
  log(
    `waits: ${c.waitsCompletedWithReply}/${c.waits} completed with their reply, resumed once (${c.replies} replies: ${c.waitsWithTwoReplies} waits got two, ${c.repliesAcceptedBeforeTrigger} accepted before their trigger, ${c.repliesAfterTheKills} sent after the kills); ` +
      `cancelOn: ${c.cancelsSent} cancels for ${c.cancellable} sleeping runs: ${c.cancelledRuns} Cancelled, ${c.completedDespiteCancel} Completed (no cancel met the run while it was under way); ` +
      `concurrency 3: ${c.limitedRuns + c.limitedInvoked} runs, at most ${c.limitedMaxOverlap} work bodies at once`,
  );
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
  process.exitCode = failed ? 1 : 0;
}

main().catch(async (err) => {
  console.error(`[chaos] ${err.stack ?? err}`);
  if (child?.pid) signalGroup(child.pid, "SIGKILL");
  process.exit(2);
});
