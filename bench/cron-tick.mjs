// `node bench/cron-tick.mjs` (npm run bench:cron-tick): how long one tick takes with 1,000 cron
// functions registered, under `wrangler dev` on this machine.
//
//   node bench/cron-tick.mjs [--rounds N]     (N minutes with all 1,000 due; default 2)
//
// The Worker (bench/cron-tick/index.ts) registers 1,000 functions, all `* * * * *`, and runs a tick
// on `POST /bench/tick`, the tick the Scheduler's alarm runs (crons, the sweep, the runs index
// repair, the pruning), timing it inside the Worker; nothing else ticks. The bench times:
// - the first tick, on an empty crons table: it stores the 1,000 crons;
// - ticks with none due (inside a minute): each reads the 1,000 rows and finds nothing to start;
// - the first tick after a minute boundary, with all 1,000 due: it starts 1,000 runs (50 at a time,
//   each creating its run's Durable Object), moves the 1,000 rows on and indexes the runs;
// then waits until the 1,000 runs of each minute are Completed in the runs index, and times a tick
// with none due again (the runs index 1,000 rows longer).
//
// Every request is a POST, sent again if wrangler's dev proxy answers 503 "Your worker restarted
// mid-request": after a request of several seconds (the all-due tick) the proxy may reuse a
// connection to the Worker that the runtime's keep-alive timeout closed meanwhile, and take the
// reset for a restart (workers-sdk issue 14641; the Worker never restarted). A GET would be held
// for a restart that never comes. A tick is idempotent, so sending it again is safe; the figures
// are the Worker's own timing of the tick that answered. Retries are counted in the results.
// Prints a table and writes bench/results/cron-tick.json.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort, killStartedSync, runScript, sleep, startWranglerDev, wrangler } from "./lib/processes.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const CONFIG = "bench/cron-tick/wrangler.toml";
const FUNCTIONS = 1_000;
const MINUTE_MS = 60_000;
/** Ticks with none due timed per round (the median is reported). */
const NONE_DUE_TICKS = 5;
/** How long after a boundary the all-due tick runs: past the minute, as the alarm would. */
const AFTER_BOUNDARY_MS = 500;

const { values: opts } = parseArgs({ options: { rounds: { type: "string", default: "2" } } });
const ROUNDS = Math.max(1, Number(opts.rounds));

const t0 = Date.now();
const say = (message) => console.log(`[cron-tick ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${message}`);

let server;
let tmpDir;
process.once("exit", killStartedSync);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    cleanup().finally(() => process.exit(130));
  });
}

/** Keeps the server's output (stamped with seconds since it started) in bench/results/logs/, git-ignored. */
async function saveLog() {
  if (!server) return;
  const dir = path.join(ROOT, "bench", "results", "logs");
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "cron-tick.log"), server.log().replace(/\x1b\[[0-9;]*m/g, ""));
}

async function cleanup() {
  await saveLog();
  await server?.stop();
  server = undefined;
  if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
}

/** Requests the dev proxy reset and the bench sent again (see the top of this file). */
let proxyRetries = 0;

async function post(urlPath) {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    const res = await fetch(`${server.url}${urlPath}`, { method: "POST", signal: AbortSignal.timeout(300_000) });
    const text = await res.text();
    if (res.status === 503 && text.includes("restarted mid-request") && attempt < 3) {
      proxyRetries++;
      continue;
    }
    if (!res.ok) throw new Error(`POST ${urlPath} answered ${res.status}: ${text.slice(0, 500)}`);
    return { ...JSON.parse(text), roundTripMs: performance.now() - started };
  }
}

const state = () => post("/bench/state");

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Waits until `at` (epoch ms). */
const until = (at) => sleep(Math.max(0, at - Date.now()));

async function main() {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), "stepflare-cron-tick-"));
  const persistTo = path.join(tmpDir, "state");
  say("applying D1 migrations to a fresh state directory");
  await wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo, "--config", CONFIG], { cwd: ROOT });
  const [port, inspectorPort] = [await freePort(), await freePort()];
  say("starting wrangler dev");
  server = await startWranglerDev({ name: "cron-tick", cwd: ROOT, config: CONFIG, port, inspectorPort, persistTo, readyPath: "/bench/ready" });
  const problems = [];

  // The first tick and the none-due ones must fall inside one minute: start with 20 s to spare.
  if (Date.now() % MINUTE_MS > 40_000) {
    say("waiting for the next minute, so the first ticks fall inside one");
    await until(Math.ceil(Date.now() / MINUTE_MS) * MINUTE_MS + 1_000);
  }
  const first = await post("/bench/tick");
  const stored = await state();
  say(`first tick: ${first.ms} ms (round trip ${first.roundTripMs.toFixed(0)} ms), ${stored.crons.n} crons stored`);
  if (stored.crons.n !== FUNCTIONS) problems.push(`the first tick stored ${stored.crons.n} crons, expected ${FUNCTIONS}`);
  if (first.cronRuns !== 0) problems.push(`the first tick started ${first.cronRuns} runs, expected none`);

  const rounds = [];
  let boundary = Math.ceil(Date.now() / MINUTE_MS) * MINUTE_MS;
  for (let round = 1; round <= ROUNDS; round++) {
    const noneDue = [];
    for (let i = 0; i < NONE_DUE_TICKS && Date.now() < boundary - 5_000; i++) {
      const tick = await post("/bench/tick");
      if (tick.cronRuns !== 0) problems.push(`a tick inside the minute started ${tick.cronRuns} runs, expected none`);
      noneDue.push(tick.ms);
    }
    say(`round ${round}: ${noneDue.length} ticks with none due: ${noneDue.join(", ")} ms; waiting for ${new Date(boundary).toISOString().slice(11, 19)}`);
    await until(boundary + AFTER_BOUNDARY_MS);
    const allDue = await post("/bench/tick");
    say(`round ${round}: tick with all due: ${allDue.ms} ms (round trip ${allDue.roundTripMs.toFixed(0)} ms), ${allDue.cronRuns} runs started`);
    if (allDue.cronRuns !== FUNCTIONS) problems.push(`round ${round}: the tick after ${new Date(boundary).toISOString()} started ${allDue.cronRuns} runs, expected ${FUNCTIONS}`);
    // Every run of the minute (and those of the minutes before) ends Completed.
    const expected = FUNCTIONS * round;
    const deadline = Date.now() + 180_000;
    let runs;
    for (;;) {
      runs = (await state()).runs;
      if ((runs.Completed ?? 0) >= expected || Date.now() > deadline) break;
      await sleep(1_000);
    }
    const completedAfterMs = Date.now() - boundary;
    if ((runs.Completed ?? 0) !== expected) problems.push(`round ${round}: ${runs.Completed ?? 0} runs Completed in the runs index, expected ${expected}`);
    const after = await post("/bench/tick");
    if (after.cronRuns !== 0) problems.push(`round ${round}: the tick after the runs completed started ${after.cronRuns} runs, expected none`);
    noneDue.push(after.ms);
    say(`round ${round}: runs index ${JSON.stringify(runs)}, ${completedAfterMs} ms after the minute; then a tick with none due: ${after.ms} ms`);
    rounds.push({ boundary: new Date(boundary).toISOString(), noneDueMs: noneDue, allDueMs: allDue.ms, allDueRoundTripMs: Math.round(allDue.roundTripMs), allCompletedAfterMs: completedAfterMs });
    boundary += MINUTE_MS;
    while (boundary < Date.now() + 10_000) boundary += MINUTE_MS;
  }

  const noneDueAll = rounds.flatMap((r) => r.noneDueMs);
  const summary = {
    functions: FUNCTIONS,
    firstTickMs: first.ms,
    noneDueMedianMs: median(noneDueAll),
    noneDueRangeMs: [Math.min(...noneDueAll), Math.max(...noneDueAll)],
    allDueMs: rounds.map((r) => r.allDueMs),
    allCompletedAfterMs: rounds.map((r) => r.allCompletedAfterMs),
  };
  console.log(`\nOne tick with ${FUNCTIONS} cron functions registered (wrangler dev, ${os.cpus().length} cores; the tick's own clock):`);
  console.log(`  first tick (stores the ${FUNCTIONS} crons):          ${summary.firstTickMs} ms`);
  console.log(`  none due (median of ${noneDueAll.length}, range):            ${summary.noneDueMedianMs} ms (${summary.noneDueRangeMs.join("–")} ms)`);
  console.log(`  all ${FUNCTIONS} due (starts ${FUNCTIONS} runs), per round:    ${summary.allDueMs.join(", ")} ms`);
  console.log(`  all ${FUNCTIONS} runs of a minute Completed, after it:  ${summary.allCompletedAfterMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(", ")}`);
  if (proxyRetries) console.log(`\n${proxyRetries} requests sent again after the dev proxy reset them (workers-sdk issue 14641).`);
  if (problems.length) console.log(`\nPROBLEMS (${problems.length}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  else console.log("\nEvery tick started what was due, and every run completed.");
  console.log(`\ncron-tick took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const resultsDir = path.join(ROOT, "bench", "results");
  await mkdir(resultsDir, { recursive: true });
  const meta = { generatedAt: new Date().toISOString(), machine: { cpus: os.cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` } };
  await writeFile(path.join(resultsDir, "cron-tick.json"), `${JSON.stringify({ summary, rounds, proxyRetries, problems, meta }, null, 2)}\n`);
  say("wrote bench/results/cron-tick.json");
  if (problems.length) process.exitCode = 1;
}

await runScript(main, { server: () => server, cleanup });
