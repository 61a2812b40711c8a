// `npm run chaos`: starts `wrangler dev` (chaos/wrangler.toml) on a temp `--persist-to` dir, sends
// the events of chaos/scenarios.mjs over HTTP in many small requests, kills the dev server's whole
// process group with SIGKILL at random moments (0.3–3 s apart, at least 3 times), restarts it on
// the same state each time, lets it settle, then checks:
// - every event answered with a 200 is in D1 (`GET /v1/events/:id`) and has its runs;
// - every run reaches its expected final state with its expected output and stored steps;
// - every step body ran as often as the row says (counted by a counter server on 127.0.0.1 that
//   each step calls before returning); a body may run again only after a crash cut it mid-flight
//   (a kill between each execution and the next), never otherwise.
// Crashes land wherever they land: in ingest (between the D1 write and the queue send), in the queue
// consumer (between starting runs and its D1 write), and in Durable Objects mid-run.
//
// Usage: node chaos/run.mjs [--short] [--runs N] [--kills N] [--seed S] [--keep]
//   full: 200 runs, 5 kills; --short (CI): 40 runs, 3 kills.
// Prints `chaos: runs=… crashes=… lost=… duplicated=…` last and exits 1 if anything was lost,
// duplicated or wrong. Logs (one wrangler log per server life, counter hits, report) go to
// /tmp/stepflare-chaos-<time>/; the persisted state is kept there too when the run fails (or --keep).
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { isDeepStrictEqual, parseArgs, promisify } from "node:util";
import { childEnv, freePort, groupAlive, signalGroup, stopProcessGroup } from "../bench/lib/processes.mjs";
import { runsOf, scenarios } from "./scenarios.mjs";

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
    keep: { type: "boolean", default: false },
  },
});
const SHORT = opts.short;
const TARGET_RUNS = Number(opts.runs ?? (SHORT ? 40 : 200));
const KILLS = Math.max(3, Number(opts.kills ?? (SHORT ? 3 : 5)));
const SEED = Number(opts.seed ?? Date.now() % 1_000_000);
/**
 * How long runs may take to settle after the last restart: runs mid-execution resume from their
 * watchdog alarm (≤ 10 s), and events lost from the queue wait for the Scheduler's sweep (every
 * 60 s, for events older than 30 s), so up to ~90 s plus the work itself.
 */
const SETTLE_MS = SHORT ? 150_000 : 240_000;
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
// The counter: every step body POSTs { root, key, event } here before returning. Answers after a
// random 0–150 ms, which widens the window in which a kill cuts a step mid-flight.

const hits = []; // { root, key, event, at }
function startCounter() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString());
        hits.push({ root: body.root, key: body.key, event: body.event, at: Date.now() });
      } catch {
        res.writeHead(400).end();
        return;
      }
      setTimeout(() => res.writeHead(204).end(), Math.random() * 150);
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
 * unplanned crash the checks would count as a duplicate).
 */
async function freezeWorker() {
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
  const frozen = source
    .replace(main, `main = "bundle/index.js"\nno_bundle = true`)
    .replace(migrations, `migrations_dir = ${JSON.stringify(migrationsDir)}`);
  fs.writeFileSync(CONFIG, `# Written by chaos/run.mjs from chaos/wrangler.toml: serves the build in bundle/.\n${frozen}`);
}

let child = null;
let baseUrl = "";
let life = 0;
let up = false;
let upWaiters = [];
const killTimes = [];

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
  for (const resolve of upWaiters) resolve();
  upWaiters = [];
  log(`server life ${life} ready on ${baseUrl} in ${Date.now() - started} ms`);
}

async function killServer() {
  const proc = child;
  up = false;
  const at = Date.now();
  killTimes.push(at);
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
// The plan: scenario instances until the target number of runs, sent in requests of 1–4 events.

function plan(rng, counterUrl) {
  const totalWeight = scenarios.reduce((n, s) => n + s.weight, 0);
  const instances = [];
  let runs = 0;
  // Every row at least once, then weighted picks.
  for (let i = 0; runs < TARGET_RUNS || i < scenarios.length; i++) {
    let scenario = scenarios[i];
    if (i >= scenarios.length) {
      let pick = rng.next() * totalWeight;
      scenario = scenarios.find((s) => (pick -= s.weight) < 0) ?? scenarios[0];
    }
    const root = `chaos-${String(i).padStart(3, "0")}-${scenario.event.split("/")[1]}`;
    const data = { ...scenario.data(i, rng), counter: counterUrl, root };
    runs += runsOf(scenario, data);
    instances.push({ scenario, root, data });
  }
  for (let i = instances.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [instances[i], instances[j]] = [instances[j], instances[i]];
  }
  const batches = [];
  for (let i = 0; i < instances.length; ) {
    const size = 1 + rng.int(4);
    batches.push(instances.slice(i, i + size));
    i += size;
  }
  return { instances, batches, runs };
}

// ---------------------------------------------------------------------------------------------
// Sending: one request at a time or two, all through the kills. A request the kill cut (or any
// answer but 200) is not accepted and is sent again later with the same event ids; an id answered
// with 200 must never be lost.

const accepted = new Map(); // root → { at, life }
const sendStats = { requests: 0, ok: 0, cut: 0, refused: 0, cutIds: [], refusals: [] };

/** Resolvers waiting for the next request to start (aimed kills). */
let requestWaiters = [];
const nextRequestStart = () => new Promise((resolve) => requestWaiters.push(resolve));

async function sendBatch(batch) {
  const body = batch.map(({ scenario, root, data }) => ({ id: root, name: scenario.event, data }));
  sendStats.requests++;
  for (const resolve of requestWaiters) resolve();
  requestWaiters = [];
  try {
    const res = await fetch(`${baseUrl}/e/chaos`, {
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
    if (res.status === 200 && isDeepStrictEqual(answer.ids, ids)) {
      sendStats.ok++;
      for (const id of ids) if (!accepted.has(id)) accepted.set(id, { at: Date.now(), life });
      return true;
    }
    sendStats.refused++;
    sendStats.refusals.push({ at: new Date().toISOString(), life, status: res.status, ids });
    log(`POST /e/chaos answered ${res.status} in server life ${life} (sent again later): ${JSON.stringify(answer).slice(0, 200)}`);
    return false;
  } catch {
    sendStats.cut++;
    sendStats.cutIds.push(batch.map((b) => b.root));
    return false;
  }
}

async function sendAll(batches, intervalMs) {
  const pending = [...batches];
  const inFlight = new Set();
  while (pending.length > 0 || inFlight.size > 0) {
    if (pending.length === 0 || inFlight.size >= 2) {
      await Promise.race([...inFlight, sleep(50)]);
      continue;
    }
    await whenUp();
    const batch = pending.shift();
    const p = sendBatch(batch).then((ok) => {
      inFlight.delete(p);
      if (!ok) pending.push(batch);
    });
    inFlight.add(p);
    await sleep(intervalMs);
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

/**
 * Walks the events an instance leads to; answers { settled, events: [{ id, expected, status, runs }] }.
 * Settled: every expected event has at least its expected number of runs, all in a final state.
 */
async function observe(instance) {
  const found = {};
  const events = [];
  let settled = true;
  let listed = instance.scenario.events(instance.data, instance.root, found);
  for (let i = 0; i < listed.length; i++) {
    const expected = listed[i];
    const { status, body } = await getJson(`/v1/events/${encodeURIComponent(expected.id)}/runs`);
    const runs = status === 200 ? body.data : [];
    events.push({ id: expected.id, expected, status, runs });
    if (status !== 200 || runs.length < expected.runs.length || !runs.every((r) => FINAL.has(r.status))) settled = false;
    for (const run of runs) found[run.function_id] ??= run;
    // A later event's id may depend on a run just found (`<run_id>-failed`).
    listed = instance.scenario.events(instance.data, instance.root, found);
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
 * For the executions of one step body (sorted by time): a distinct kill between each one and the
 * next, i.e. every execution but the last was cut mid-flight by a crash. Answers one entry per cut
 * (how long after the execution the kill came, and when the body ran again), or null if some
 * re-run has no crash to explain it.
 */
function crashesBetween(seen) {
  const cuts = [];
  let used = -1;
  for (let i = 0; i + 1 < seen.length; i++) {
    const k = killTimes.findIndex((t, j) => j > used && t >= seen[i].at - HIT_CLOCK_SLACK_MS && t <= seen[i + 1].at);
    if (k < 0) return null;
    used = k;
    cuts.push({ killAfterMs: killTimes[k] - seen[i].at, rerunAfterMs: seen[i + 1].at - seen[i].at });
  }
  return cuts;
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

async function verify(instances) {
  const problems = []; // { kind: lost | wrong | duplicated, root, ... }
  let runsSeen = 0;
  const runStates = new Map(); // run id → { status, ended_at } as its object tells
  const reruns = []; // step executions a crash cut mid-flight, so the body ran again (allowed)
  const resumed = new Set(); // runs with step executions on both sides of a crash
  const hitsByRoot = groupBy(hits, (h) => h.root);

  await pool(instances, 4, async (instance) => {
    const { root } = instance;
    // Every accepted event is in the event log.
    const event = await getJson(`/v1/events/${encodeURIComponent(root)}`);
    if (event.status !== 200) issue(problems, "lost", root, { what: `GET /v1/events/${root} answered ${event.status}`, body: event.body });
    else if (event.body.data?.name !== instance.scenario.event || !isDeepStrictEqual(event.body.data?.data, instance.data)) {
      issue(problems, "wrong", root, { what: `GET /v1/events/${root} answered ${JSON.stringify(event.body.data).slice(0, 300)}, not the event sent` });
    }

    const { events } = await observe(instance);
    for (const { id, expected, status, runs } of events) {
      if (status !== 200) {
        issue(problems, "lost", root, { what: `event ${id} is not in the event log (${status})` });
        continue;
      }
      const byFn = groupBy(runs, (r) => r.function_id);
      for (const [fn, list] of byFn) {
        if (!expected.runs.some((r) => r.fn === fn)) issue(problems, "duplicated", root, { what: `event ${id} has unexpected run(s) of ${fn}`, runs: list.map((r) => r.run_id) });
        else if (list.length > 1) issue(problems, "duplicated", root, { what: `event ${id} has ${list.length} runs of ${fn}`, runs: list.map((r) => r.run_id) });
      }
      for (const want of expected.runs) {
        const run = byFn.get(want.fn)?.[0];
        if (!run) {
          issue(problems, "lost", root, { what: `event ${id} has no run of ${want.fn}` });
          continue;
        }
        runsSeen++;
        runStates.set(run.run_id, { status: run.status, ended_at: run.ended_at });
        if (run.status !== want.status) {
          issue(problems, "lost", root, { what: `run ${run.run_id} (${want.fn}, event ${id}) is ${run.status}, expected ${want.status}`, error: run.error });
          continue;
        }
        if ("output" in want && !isDeepStrictEqual(run.output, want.output)) {
          issue(problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) output ${JSON.stringify(run.output)}, expected ${JSON.stringify(want.output)}` });
        }
        if (want.error && !JSON.stringify(run.error ?? {}).includes(want.error)) {
          issue(problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) error ${JSON.stringify(run.error)}, expected one with ${JSON.stringify(want.error)}` });
        }
        const detail = await getJson(`/v1/runs/${run.run_id}`);
        if (detail.status !== 200) {
          issue(problems, "lost", root, { what: `GET /v1/runs/${run.run_id} answered ${detail.status}` });
          continue;
        }
        const steps = detail.body.data.steps;
        const names = steps.map((s) => s.name);
        if (want.steps && !isDeepStrictEqual([...names].sort(), [...want.steps].sort())) {
          issue(problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) stored steps ${JSON.stringify(names)}, expected ${JSON.stringify(want.steps)}` });
        }
        const unfinished = steps.filter((s) => s.status !== "Completed" && !(want.status === "Failed" && s.status === "Failed"));
        if (unfinished.length > 0) issue(problems, "wrong", root, { what: `run ${run.run_id} (${want.fn}) has unfinished steps ${JSON.stringify(unfinished.map((s) => [s.name, s.status]))}` });
      }
    }

    // Side effects: each step body ran as often as expected, plus once per crash that cut it mid-flight.
    const expectedEffects = instance.scenario.effects(instance.data);
    const mine = groupBy(hitsByRoot.get(root) ?? [], (h) => h.key);
    for (const key of new Set([...Object.keys(expectedEffects), ...mine.keys()])) {
      const want = expectedEffects[key] ?? 0;
      const seen = (mine.get(key) ?? []).sort((a, b) => a.at - b.at);
      const eventIds = new Set(seen.map((h) => h.event));
      if (eventIds.size > 1) issue(problems, "duplicated", root, { what: `step ${key} ran for ${eventIds.size} different events: ${[...eventIds].join(", ")}` });
      if (seen.length < want) {
        issue(problems, "lost", root, { what: `step ${key} ran ${seen.length} times, expected ${want}` });
      } else if (seen.length > want) {
        const cuts = want === 1 ? crashesBetween(seen) : null;
        if (cuts) for (const cut of cuts) reruns.push({ root, key, ...cut });
        else
          issue(problems, "duplicated", root, {
            what: `step ${key} ran ${seen.length} times, expected ${want}${want === 1 ? ", and not every execution was cut by a crash before the next" : ""}`,
            hits: seen.map((h) => new Date(h.at).toISOString()),
          });
      }
    }
    // A run resumed across a crash: it executed steps both before and after a kill.
    for (const [eventId, list] of groupBy(hitsByRoot.get(root) ?? [], (h) => `${h.event}|${h.key.split("/")[0]}`)) {
      const times = list.map((h) => h.at);
      const first = Math.min(...times);
      const last = Math.max(...times);
      if (killTimes.some((k) => k > first && k < last)) resumed.add(eventId);
    }
  });
  return { problems, runsSeen, reruns, resumed: resumed.size, runStates };
}

/**
 * The D1 event log and runs index, read from the persisted state: how many runs each status has in
 * the index, and events never marked dispatched. The REST API reads a run's status from its Durable
 * Object, so a stale index row is not a lost run; it is reported as what it is.
 */
async function readD1() {
  const query = async (sql) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [WRANGLER, "d1", "execute", "DB", "--local", "--config", CONFIG, "--persist-to", persistDir, "--json", "--command", sql],
      { cwd: ROOT, env: childEnv, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return JSON.parse(stdout)[0].results;
  };
  try {
    const runs = await query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status");
    const undispatched = await query("SELECT id FROM events WHERE dispatched_at IS NULL");
    const stale = await query("SELECT * FROM runs WHERE status NOT IN ('Completed', 'Failed', 'Cancelled')");
    const eventIds = [...new Set(stale.map((r) => r.event_id))];
    const staleEvents = eventIds.length
      ? await query(`SELECT id, received_at, dispatched_at FROM events WHERE id IN (${eventIds.map((id) => `'${id.replace(/'/g, "''")}'`).join(",")})`)
      : [];
    for (const row of stale) row.eventRow = staleEvents.find((e) => e.id === row.event_id) ?? null;
    return { runsIndexByStatus: Object.fromEntries(runs.map((r) => [r.status, r.n])), undispatchedEvents: undispatched.map((r) => r.id), unfinishedInIndex: stale };
  } catch (err) {
    return { error: String(err) };
  }
}

/** What the wrangler logs say: sweeps that re-enqueued lost events, run invocations that failed, errors. */
function scanLogs() {
  let reenqueued = 0;
  let sweeps = 0;
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
      if (/"level":"error"|✘ \[ERROR\]|Uncaught|Error:/.test(line) && !/Request\.cf|workers\.cloudflare\.com|getaddrinfo/.test(line)) errors.push(`life ${i}: ${line.slice(0, 400)}`);
    }
  }
  return { reenqueued, sweeps, errors, reloads };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const rng = makeRng(SEED);
  log(`mode ${SHORT ? "short" : "full"}: ${TARGET_RUNS} runs, ${KILLS} kills, seed ${SEED}; logs in ${outDir}`);
  const counter = await startCounter();
  const { instances, batches, runs } = plan(rng, counter.url);
  log(`${instances.length} events (${runs} runs) in ${batches.length} requests`);

  await freezeWorker();
  await promisify(execFile)(process.execPath, [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--config", CONFIG, "--persist-to", persistDir], {
    cwd: ROOT,
    env: childEnv,
    timeout: 120_000,
  });
  await startServer();

  // Spread the requests over about half the time the kills take (a server life of 0.3–3 s, then
  // about 3.5 s to kill and restart), so crashes land in ingest and dispatch too.
  const intervalMs = Math.min(1000, Math.max(30, (KILLS * 2500) / batches.length));
  let sendingDone = false;
  const sending = sendAll(batches, intervalMs).then(() => (sendingDone = true));
  const sendStart = Date.now();
  for (let k = 1; k <= KILLS; k++) {
    await sleep(rng.between(300, 3000));
    // Every other kill is aimed at a request: 0–40 ms after one starts, the window of ingest's D1
    // write and queue send (a request takes 7–50 ms here), and of the consumer right after.
    let how = "at a random moment";
    if (k % 2 === 0 && !sendingDone) {
      const started = await Promise.race([nextRequestStart().then(() => true), sleep(3000).then(() => false)]);
      if (started) {
        const delay = rng.between(0, 40);
        await sleep(delay);
        how = `${delay.toFixed(0)} ms after a request started`;
      }
    }
    const killMs = await killServer();
    log(`kill -9 #${k} ${how} (server life ${life}, its group gone in ${killMs} ms); ${accepted.size}/${instances.length} events accepted so far`);
    await startServer();
  }
  await sending;
  log(`all ${instances.length} events accepted in ${((Date.now() - sendStart) / 1000).toFixed(1)} s (${sendStats.requests} requests, ${sendStats.cut} cut by a kill, ${sendStats.refused} refused)`);

  const unsettled = await settle(instances);
  if (unsettled.length > 0) log(`${unsettled.length} events not settled after ${SETTLE_MS / 1000} s`);
  else log("every event settled");
  // A little grace, so a step that would run a second time after the end is counted too.
  await sleep(2_000);
  const { problems, runsSeen, reruns, resumed, runStates } = await verify(instances);
  const { reenqueued, sweeps, errors, reloads } = scanLogs();

  const count = (kind) => problems.filter((p) => p.kind === kind).length;
  const lost = count("lost");
  const duplicated = count("duplicated");
  const wrong = count("wrong");
  const report = {
    mode: SHORT ? "short" : "full",
    seed: SEED,
    seconds: (Date.now() - t0) / 1000,
    runs: runsSeen,
    expectedRuns: runs,
    events: instances.length,
    crashes: killTimes.length,
    killTimes: killTimes.map((t) => new Date(t).toISOString()),
    requests: sendStats,
    stepReruns: reruns.length,
    // For each cut execution: how long after it the kill came, and after it the body ran again.
    stepRerunDetails: reruns,
    runsResumedAcrossACrash: resumed,
    sweeps,
    reenqueuedBySweep: reenqueued,
    unplannedReloads: reloads,
    lost,
    duplicated,
    wrong,
    problems,
    logErrors: errors.slice(0, 50),
  };
  fs.writeFileSync(path.join(outDir, "report.json"), JSON.stringify(report, null, 2));
  fs.writeFileSync(path.join(outDir, "hits.json"), JSON.stringify(hits, null, 1));
  fs.writeFileSync(path.join(outDir, "events.json"), JSON.stringify(instances.map(({ scenario, root, data }) => ({ root, scenario: scenario.name, data, accepted: accepted.get(root) })), null, 1));

  await stopServer();
  counter.close();
  // The D1 runs index and event log as the server left them (read with the server stopped).
  report.d1 = await readD1();
  // For a run the index still thinks unfinished: what its object says, and the kill that followed its end.
  for (const row of report.d1.unfinishedInIndex ?? []) {
    const state = runStates.get(row.id);
    row.object = state ?? null;
    const ended = state?.ended_at ? Date.parse(state.ended_at) : NaN;
    const kill = killTimes.find((k) => k >= ended);
    row.killAfterEndMs = Number.isFinite(ended) && kill !== undefined ? kill - ended : null;
  }
  fs.writeFileSync(path.join(outDir, "report.json"), JSON.stringify(report, null, 2));
  const failed = lost + duplicated + wrong > 0;
  if (!failed && !opts.keep) for (const dir of ["state", "bundle", ".wrangler"]) fs.rmSync(path.join(outDir, dir), { recursive: true, force: true });

  for (const p of problems.slice(0, 30)) console.log(`  ${p.kind}: ${p.root}: ${p.what}${p.hits ? ` at ${p.hits.join(", ")}` : ""}`);
  if (problems.length > 30) console.log(`  … ${problems.length - 30} more in ${path.join(outDir, "report.json")}`);
  if (reloads.length > 0) log(`warning: wrangler reloaded the server without a kill (${reloads.join(", ")}): a reload drops objects mid-step like a crash the checks do not know of`);
  if (errors.length > 0) log(`${errors.length} error lines in the wrangler logs (first: ${errors[0]})`);
  const latestCut = Math.max(0, ...reruns.map((r) => r.killAfterMs));
  // A step's result is stored within milliseconds of its body returning (the counter answers in
  // ≤ 150 ms): a second execution whose kill came much later points at a result that was not durable.
  const late = reruns.filter((r) => r.killAfterMs > 2_000);
  if (late.length > 0) log(`warning: ${late.length} step bodies ran again although the kill came > 2 s after their first execution: ${JSON.stringify(late.slice(0, 5))}`);
  log(
    `${sendStats.cut} requests cut by a kill; ${reruns.length} step executions cut mid-flight ran again${reruns.length ? ` (each killed ≤ ${latestCut} ms after it ran)` : ""}; ${resumed} runs resumed across a crash; ` +
      `${reenqueued} events re-enqueued by ${sweeps} sweeps; report in ${path.join(outDir, "report.json")}`,
  );
  const staleIndex = (report.d1.unfinishedInIndex ?? []).filter((row) => FINAL.has(row.object?.status));
  if (report.d1.runsIndexByStatus) {
    log(
      `D1 after the run: runs index ${JSON.stringify(report.d1.runsIndexByStatus)}, ${report.d1.undispatchedEvents.length} events never marked dispatched` +
        (staleIndex.length ? ` (warning: the index misses the end of ${staleIndex.length} runs their objects say are over: ${staleIndex.slice(0, 3).map((r) => r.id).join(", ")})` : ""),
    );
  } else log(`could not read D1: ${report.d1.error}`);
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log(`chaos: runs=${runsSeen} crashes=${killTimes.length} lost=${lost} duplicated=${duplicated}${wrong ? ` wrong=${wrong}` : ""}`);
  process.exitCode = failed ? 1 : 0;
}

main().catch(async (err) => {
  console.error(`[chaos] ${err.stack ?? err}`);
  if (child?.pid) signalGroup(child.pid, "SIGKILL");
  process.exit(2);
});
