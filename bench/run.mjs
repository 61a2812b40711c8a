// `npm run bench`: Stepflare against Cloudflare Workflows and a raw SQLite Durable Object (the
// floor), all under `wrangler dev` on this machine. See bench/README.md for what is measured and how.
//
//   node bench/run.mjs [--only id,id] [--rounds N]      (npm run load: --only load, 60 s of ingest)
//                                                       (--only takes a scenario's number too: --only 4,9b)
//
// Completion is seen exactly: the last step of every run calls the counter (a Node HTTP server on
// 127.0.0.1), and the floor's call returns when its work is done. Nothing polls run status while
// timing; statuses and outputs are checked through the APIs after all timing.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { cfwfClient, mapLimit, stepflareClient } from "./lib/clients.mjs";
import { startCounter } from "./lib/counter.mjs";
import { startRemoteApp } from "./lib/remoteApp.mjs";
import { runIngest } from "./lib/ingest.mjs";
import { freePort, groupRssMb, killStartedSync, sleep, startWranglerDev, wrangler } from "./lib/processes.mjs";
import { buildRows, formatTable, resultsJson, SYSTEMS } from "./lib/report.mjs";
import { summarize } from "./lib/stats.mjs";
import { scenarios as allScenarios } from "./scenarios/index.mjs";
import { BUFFERED_COST_GOAL_PER_MILLION, COST_GOAL_PER_MILLION, costPerMillion } from "./lib/cost.mjs";
import { dispatchedAtSql } from "./lib/dispatched.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const RESULTS_DIR = path.join(ROOT, "bench", "results");
const SF_CONFIG = "bench/stepflare/wrangler.toml";
const CF_CONFIG = "bench/cfwf/wrangler.toml";
/** Quiet time after each measurement, so a system's trailing work (run ends, index writes) does not land in the next one. */
const SETTLE_MS = 300;
const MAX_PROBLEMS_SHOWN = 20;

const args = process.argv.slice(2);
const argValue = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = argValue("--only")?.split(",");
const roundsOverride = argValue("--rounds") ? Number(argValue("--rounds")) : undefined;
/** A scenario's number, as its name begins ("10b" of "10b. …"): `--only` takes it as well as the id. */
const numberOf = (scenario) => scenario.name.match(/^(\w+)\./)?.[1];
const isNamed = (scenario, name) => name === scenario.id || name === numberOf(scenario);
const unknown = only?.filter((name) => !allScenarios.some((s) => isNamed(s, name))) ?? [];
if (unknown.length) {
  console.error(`--only: no scenario ${unknown.join(", ")}; the scenarios are ${allScenarios.map((s) => `${numberOf(s)} (${s.id})`).join(", ")}`);
  process.exit(2);
}
// Opt-in scenarios (the 60 s load) run only when named with --only.
const scenarios = only ? allScenarios.filter((s) => only.some((name) => isNamed(s, name))) : allScenarios.filter((s) => !s.optIn);
/** A partial run (--only) writes its own file, so bench/results/latest.json stays a whole run. */
const resultsFile = only ? `${only.join("-")}.json` : "latest.json";

const startedAt = Date.now();
const elapsed = () => `${((Date.now() - startedAt) / 1000).toFixed(0)}s`.padStart(4);
const say = (message) => console.log(`[bench ${elapsed()}] ${message}`);

const servers = [];
let tmpDir;
let counter;
let remoteApp;

/** Stops what this process started, and only that. */
async function cleanup() {
  await Promise.all(servers.map((server) => server.stop()));
  servers.length = 0;
  await counter?.close();
  await remoteApp?.stop();
  if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
}

process.once("exit", killStartedSync);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    say(`${signal}: stopping the wrangler dev processes`);
    cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
  await cleanup();
} catch (err) {
  console.error(err);
  await saveLogs();
  await cleanup();
  process.exit(1);
}

async function main() {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), "stepflare-bench-"));
  const sfPersist = path.join(tmpDir, "stepflare");
  const cfPersist = path.join(tmpDir, "cfwf");
  const [sfPort, sfInspector, cfPort, cfInspector, counterPort, appPort] = await uniquePorts(6);

  say("applying D1 migrations to a fresh state directory");
  await wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", sfPersist, "--config", SF_CONFIG], { cwd: ROOT });

  say("starting both wrangler dev processes");
  const started = await Promise.allSettled([
    startWranglerDev({ name: "stepflare", cwd: ROOT, config: SF_CONFIG, port: sfPort, inspectorPort: sfInspector, persistTo: sfPersist, readyPath: "/v1/functions" }),
    startWranglerDev({ name: "cfwf", cwd: ROOT, config: CF_CONFIG, port: cfPort, inspectorPort: cfInspector, persistTo: cfPersist, readyPath: "/ready" }),
  ]);
  for (const s of started) if (s.status === "fulfilled") servers.push(s.value);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
  const [sfServer, cfServer] = servers;
  counter = await startCounter(counterPort);
  // Scenario 11's app on the inngest SDK, served from this process.
  if (scenarios.some((scenario) => scenario.needsRemoteApp)) remoteApp = await startRemoteApp(sfServer.url, appPort);
  say(`stepflare ${sfServer.url}, workflows + floor ${cfServer.url}, counter ${counter.url}`);

  const ctx = makeContext(stepflareClient(sfServer.url), cfwfClient(cfServer.url), sfPersist);
  ctx.startStepflare = (name, vars) => startStepflare(name, vars);
  ctx.sfMemoryMb = () => groupRssMb(sfServer.child.pid);

  say("warming up");
  for (const scenario of scenarios) {
    for (const system of SYSTEMS.filter((s) => scenario.systems[s])) {
      try {
        await scenario.systems[system](ctx, { ...scenario.warmup, warmup: true });
      } catch (err) {
        ctx.problem(`warm-up ${scenario.id} / ${system}: ${err.message}`);
      }
      await sleep(SETTLE_MS);
    }
  }

  // results[scenarioId][metricKey][system] = { rounds: [...], median, min, max }
  const results = {};
  const usage = {};
  for (const scenario of scenarios) {
    const systems = SYSTEMS.filter((s) => scenario.systems[s]);
    const rounds = roundsOverride ?? scenario.rounds ?? 3;
    const perSystem = Object.fromEntries(systems.map((s) => [s, []]));
    for (let round = 0; round < rounds; round++) {
      const order = systems.map((_, i) => systems[(i + round) % systems.length]);
      for (const system of order) {
        const before = system === "stepflare" ? await ctx.sf.usage() : null;
        let value = null;
        try {
          value = await scenario.systems[system](ctx, scenario.params);
        } catch (err) {
          ctx.problem(`${scenario.id} round ${round + 1} / ${system}: ${err.message}`);
        }
        perSystem[system].push(value);
        say(`${scenario.name} · round ${round + 1} · ${system}: ${value ? Object.entries(value).map(([k, v]) => `${k} ${v?.toFixed(2)}`).join(", ") : "failed"}`);
        await sleep(SETTLE_MS);
        if (before) usage[scenario.id] = usageDelta(before, await quietUsage(ctx), scenario.params.runs);
      }
    }
    results[scenario.id] = {};
    for (const metric of scenario.metrics) {
      results[scenario.id][metric.key] = {};
      for (const system of systems) {
        const values = perSystem[system].map((v) => v?.[metric.key] ?? null);
        results[scenario.id][metric.key][system] = { rounds: values, ...summarize(values) };
      }
    }
  }

  say("checking every run's status and output (timing is over)");
  await ctx.verify();
  await sfServer.stop();
  await ctx.verifyStopped();
  // wrangler dev rebuilds and restarts a Worker when a source file changes: runs in flight are cut off.
  for (const server of servers) {
    const reloads = [...server.log().matchAll(/\[\+([\d.]+)s\][^\n]*\n?[^[]*?Reloading local server/g)].map((m) => `+${m[1]}s`);
    if (reloads.length) ctx.problem(`${server.name}: wrangler dev reloaded the Worker during the bench (a source file changed) at ${reloads.join(", ")} after it started; measurements around then are suspect`);
  }

  const rows = buildRows(scenarios, results);
  const value = (id, key, system) => results[id]?.[key]?.[system]?.median ?? NaN;
  const targets = scenarios.flatMap((scenario) =>
    scenario.targets.map((target) => {
      const met = target.check(value);
      return { scenario: scenario.name, target: target.text, met };
    }),
  );
  const ratios = scenarios.flatMap((scenario) => (scenario.ratios ?? []).map((ratio) => ({ scenario: scenario.name, ratio: ratio.text, value: ratio.value(value) })));

  const totalSec = (Date.now() - startedAt) / 1000;
  console.log(`\n${formatTable(rows)}\n`);
  console.log("Medians of the rounds; ranges are min–max over the rounds. Only ratios within one run mean anything.");
  if (targets.length) console.log("\nTargets (on the medians):");
  // A target whose reference was not measured (a scenario left out with --only) is n/a.
  for (const t of targets) console.log(`  ${t.met === null ? "n/a   " : t.met ? "met   " : "MISSED"}  ${t.scenario}: ${t.target}`);
  if (ratios.length) {
    console.log("\nRatios (on the medians):");
    for (const r of ratios) console.log(`  ${r.value === null ? "n/a" : `${r.value.toFixed(2)}×`.padStart(6)}  ${r.scenario}: ${r.ratio}`);
  }
  if (Object.keys(usage).length) {
    console.log("\nStepflare billable operations per run (last round, from GET /v1/usage):");
    for (const [id, u] of Object.entries(usage)) if (u) console.log(`  ${id}: ${Object.entries(u).map(([k, v]) => `${k} ${v}`).join(", ")}`);
    const priced = usage["five-steps"];
    if (priced) {
      const dollars = costPerMillion(priced);
      console.log(`  a million 5-step runs at list price: $${dollars.toFixed(2)} (goal ≤ $${COST_GOAL_PER_MILLION}: ${dollars <= COST_GOAL_PER_MILLION ? "met" : "MISSED"})`);
    }
    const buffered = usage["twenty-steps-buffered"];
    if (buffered) {
      const dollars = costPerMillion(buffered);
      console.log(`  a million runs of up to 20 steps with buffered checkpoints: $${dollars.toFixed(2)} (goal ≤ $${BUFFERED_COST_GOAL_PER_MILLION}: ${dollars <= BUFFERED_COST_GOAL_PER_MILLION ? "met" : "MISSED"})`);
    }
  }
  if (ctx.notes.length) console.log(`\nNotes:\n${ctx.notes.map((n) => `  ${n}`).join("\n")}`);
  if (ctx.problems.length === 0) console.log("\nEvery run completed with the expected output.");
  else {
    const shown = ctx.problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `  - ${p}`);
    if (ctx.problems.length > MAX_PROBLEMS_SHOWN) shown.push(`  ... and ${ctx.problems.length - MAX_PROBLEMS_SHOWN} more (all in bench/results/latest.json)`);
    console.log(`\nPROBLEMS (${ctx.problems.length}):\n${shown.join("\n")}`);
  }
  console.log(`\nbench took ${totalSec.toFixed(0)} s`);

  const json = resultsJson({
    rows,
    targets,
    ratios: ratios.map((r) => ({ ...r, value: r.value === null ? null : Math.round(r.value * 1000) / 1000 })),
    notes: ctx.notes,
    problems: ctx.problems,
    usage,
    meta: {
      generatedAt: new Date().toISOString(),
      machine: { cpus: os.cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
      durationSec: Math.round(totalSec),
    },
  });
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(path.join(RESULTS_DIR, resultsFile), `${JSON.stringify(json, null, 2)}\n`);
  say(`wrote bench/results/${resultsFile}`);
  await saveLogs();
}

/**
 * A second Stepflare `wrangler dev` (the bench's Worker, a state directory of its own) with `vars`,
 * for a scenario that compares a setting against the main server; stopped with the others.
 */
async function startStepflare(name, vars) {
  const persistTo = path.join(tmpDir, name);
  const [port, inspectorPort] = await uniquePorts(2);
  await wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo, "--config", SF_CONFIG], { cwd: ROOT });
  const server = await startWranglerDev({ name, cwd: ROOT, config: SF_CONFIG, port, inspectorPort, persistTo, readyPath: "/v1/functions", vars });
  servers.push(server);
  say(`${name} ${server.url}`);
  return { url: server.url, client: stepflareClient(server.url) };
}

/** The context every scenario gets (see bench/scenarios/index.mjs). */
function makeContext(sf, cf, sfPersist) {
  let seq = 0;
  const stepflareChecks = []; // { eventId, index, check }
  const workflowChecks = []; // { workflow, id, index, check }
  const ingestChecks = [];
  const ctx = {
    sf,
    cf,
    counter,
    /** What scenarios keep for the whole bench (scenario 9's background waits). */
    state: {},
    notes: [],
    problems: [],
    now: () => performance.timeOrigin + performance.now(),
    tag: () => `t${++seq}`,
    expectHits: (tag, count, timeoutMs) => counter.expect(tag, count, timeoutMs),
    /** Checks after timing that each event started exactly one run, Completed, whose output passes check(output, index). */
    expectRuns: (eventIds, check) => eventIds.forEach((eventId, index) => stepflareChecks.push({ eventId, index, check })),
    expectInstances: (workflow, ids, check) => ids.forEach((id, index) => workflowChecks.push({ workflow, id, index, check })),
    expectIngest: (check) => ingestChecks.push(check),
    ingest: (params) => runIngest(ctx, params),
    note: (message) => ctx.notes.push(message),
    problem: (message) => {
      ctx.problems.push(message);
      if (ctx.problems.length <= MAX_PROBLEMS_SHOWN) say(`PROBLEM: ${message}`);
    },
    async verify() {
      await verifyStepflare(ctx, stepflareChecks);
      await verifyWorkflows(ctx, workflowChecks);
    },
    /** Reads the Stepflare server's D1 file once that server is stopped: while it runs, it holds the database busy. */
    verifyStopped: () => verifyIngest(ctx, ingestChecks, sfPersist),
  };
  return ctx;
}

async function verifyStepflare(ctx, checks) {
  let completed = 0;
  await mapLimit(checks, 8, async ({ eventId, index, check }) => {
    let runs;
    try {
      runs = await ctx.sf.runsOfEvent(eventId);
    } catch (err) {
      ctx.problem(`stepflare event ${eventId}: ${err.message}`);
      return;
    }
    const run = runs[0];
    if (runs.length !== 1) ctx.problem(`stepflare event ${eventId} started ${runs.length} runs, expected 1: ${JSON.stringify(runs).slice(0, 500)}`);
    else if (run.status !== "Completed") ctx.problem(`stepflare run ${run.run_id} (${run.function_id}, event ${eventId}) is ${run.status}: ${JSON.stringify(run.error ?? run.output).slice(0, 500)}`);
    else if (!check(run, index)) ctx.problem(`stepflare run ${run.run_id} (${run.function_id}) completed with an unexpected output: ${JSON.stringify(run.output).slice(0, 500)}`);
    else completed++;
  });
  say(`stepflare: ${completed} of ${checks.length} runs Completed with the expected output (GET /v1/events/:id/runs)`);
}

async function verifyWorkflows(ctx, checks) {
  const byWorkflow = Map.groupBy ? Map.groupBy(checks, (c) => c.workflow) : groupBy(checks, (c) => c.workflow);
  let completed = 0;
  for (const [workflow, list] of byWorkflow) {
    for (let k = 0; k < list.length; k += 100) {
      const chunk = list.slice(k, k + 100);
      let statuses;
      try {
        statuses = await ctx.cf.status(workflow, chunk.map((c) => c.id));
      } catch (err) {
        ctx.problem(`workflows ${workflow} status: ${err.message}`);
        continue;
      }
      for (const { id, index, check } of chunk) {
        const s = statuses[id];
        if (s?.status !== "complete") ctx.problem(`workflow ${workflow} instance ${id} is ${s?.status}: ${JSON.stringify(s?.error ?? null)}`);
        else if (!check(s.output, index)) ctx.problem(`workflow ${workflow} instance ${id} completed with an unexpected output: ${JSON.stringify(s.output)}`);
        else completed++;
      }
    }
  }
  say(`workflows: ${completed} of ${checks.length} instances complete with the expected output`);
}

/** Every accepted event is in the D1 event log, dispatched, in the runs index, and its run started. */
async function verifyIngest(ctx, checks, sfPersist) {
  if (checks.length === 0) return;
  const sql =
    "SELECT json_extract(e.data, '$.tag') AS tag, COUNT(*) AS stored, " +
    `SUM(${dispatchedAtSql("e")} IS NOT NULL) AS dispatched, ` +
    // A run started at its event's receipt is found by its function and that time (the runs index is keyed by function and start).
    "SUM(EXISTS (SELECT 1 FROM runs r WHERE r.started_at = e.received_at AND r.event_id = e.id AND r.function_id = 'bench-ingest-noop')) AS indexed " +
    "FROM events e WHERE e.name = 'bench/ingest' GROUP BY tag";
  let rows;
  try {
    const out = await wrangler(["d1", "execute", "DB", "--local", "--persist-to", sfPersist, "--config", SF_CONFIG, "--json", "--command", sql], { cwd: ROOT });
    rows = JSON.parse(out)[0].results;
  } catch (err) {
    ctx.problem(`ingest: could not query D1: ${err.message.slice(-600)}`);
    return;
  }
  const byTag = new Map(rows.map((row) => [row.tag, row]));
  for (const c of checks) {
    const row = byTag.get(c.tag) ?? { stored: 0, dispatched: 0, indexed: 0 };
    const line = `ingest ${c.tag}: ${c.accepted} accepted, ${row.stored} in the D1 event log, ${row.dispatched} dispatched, ${row.indexed} in the runs index, ${c.started} runs started`;
    // Runs of events in flight when the load stopped (stored, never answered) may tell the counter after it was read: the runs index, read with the server stopped, speaks for them.
    const ok = row.stored >= c.accepted && row.dispatched === row.stored && row.indexed === row.stored && c.started >= c.accepted && c.notStarted.length === 0;
    if (ok) ctx.note(`${line}: every accepted event is stored and started its run${row.stored > c.accepted ? ` (${row.stored - c.accepted} more were in flight when the load stopped)` : ""}`);
    else ctx.problem(`${line}${c.notStarted.length ? `; not started: ${c.notStarted.slice(0, 5).join(", ")}` : ""}`);
    if (Object.keys(c.refused).length || c.errors || c.timeouts) ctx.problem(`ingest ${c.tag}: refused ${JSON.stringify(c.refused)}, ${c.errors} errors, ${c.timeouts} timeouts`);
  }
}

function groupBy(items, key) {
  const map = new Map();
  for (const item of items) map.set(key(item), [...(map.get(key(item)) ?? []), item]);
  return map;
}

/**
 * The usage once the runs' last writes are counted: a run reports done from its last step, and its
 * end reaches its object's SQLite and the runs index just after. Read until two reads agree.
 */
async function quietUsage(ctx) {
  let last = await ctx.sf.usage();
  for (let i = 0; i < 25; i++) {
    await sleep(200);
    const next = await ctx.sf.usage();
    if (JSON.stringify(next) === JSON.stringify(last)) return next;
    last = next;
  }
  return last;
}

function usageDelta(before, after, runs) {
  if (!before || !after || !runs) return null;
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.round(((after[k] - (before[k] ?? 0)) / runs) * 100) / 100]));
}

async function uniquePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Keeps both servers' output (stamped with seconds since each started) in bench/results/logs/, git-ignored. */
async function saveLogs() {
  if (servers.length === 0) return;
  const dir = path.join(RESULTS_DIR, "logs");
  await mkdir(dir, { recursive: true });
  for (const server of servers) await writeFile(path.join(dir, `${server.name}.log`), server.log().replace(/\x1b\[[0-9;]*m/g, ""));
  say(`server output saved in bench/results/logs/`);
}
