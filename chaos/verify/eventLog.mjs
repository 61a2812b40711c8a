// What the server left behind: the event log and runs index read from D1 (with the server
// stopped), checked against what the rows lead to, and the wrangler logs of every server life.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { dispatchedAtSql } from "../../bench/lib/dispatched.mjs";
import { childEnv } from "../../bench/lib/processes.mjs";
import { cronScenario } from "../scenarios.mjs";
import { FINAL, killTimes, paths, ROOT, server, SHARDS, WRANGLER } from "../lib/context.mjs";
import { cronWindowStart, MINUTE_MS } from "../lib/minute.mjs";
import { groupBy, issue } from "./common.mjs";

const DISPATCHED_AT = dispatchedAtSql();

/**
 * The event log as the server left it, against what each row leads to: every event a root leads
 * to is stored once (so an event `step.sendEvent` sent again after a crash, its id derived or
 * given, was deduplicated), and no other event names the root (one a re-run sent with a new id).
 * Only roots whose runs were all found are checked: a missing run is already reported as lost.
 */
export function checkEventLog(rows, expectedEvents, problems) {
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
 * Checks what `readD1` answered (`d1`) against the other checks' findings (`out`): the event log
 * (checkEventLog) and the runs index. Drops the index's rows from `d1` once checked, and notes on
 * each run the index still thinks unfinished what its object says.
 */
export function checkD1(d1, out) {
  const { problems, expectedEvents, runStates } = out;
  if (d1.eventLog) checkEventLog(d1.eventLog, expectedEvents, problems);
  else issue(problems, "wrong", "-", { what: `could not read the event log from D1 to check it: ${d1.error}` });
  // Every run in the runs index is one the checks account for: an expected event's, an
  // invocation's, or the cron's for a minute (any minute since the first tick, for the cron: the
  // server ticked until it stopped).
  const cronRunIds = new Set();
  for (let t = cronWindowStart() - 2 * MINUTE_MS; t <= Date.now() + MINUTE_MS; t += MINUTE_MS) cronRunIds.add(cronScenario.runId(t));
  const runRows = groupBy(d1.allRuns ?? [], (row) => row.id);
  for (const [runId, rows] of runRows) if (rows.length > 1) issue(problems, "duplicated", rows[0].event_id, { what: `the runs index holds run ${runId} ${rows.length} times (statuses ${rows.map((r) => r.status).join(", ")})` });
  for (const row of d1.allRuns ?? []) {
    if (out.runIds.has(row.id) || (row.function_id === cronScenario.fn && cronRunIds.has(row.id))) continue;
    issue(problems, FINAL.has(row.status) ? "duplicated" : "lost", row.event_id, { what: `the runs index holds run ${row.id} (${row.function_id}, event ${row.event_id}, ${row.status}), which no check accounts for` });
  }
  delete d1.allRuns;
  // For a run the index still thinks unfinished: what its object says, and the kill that followed its end.
  for (const row of d1.unfinishedInIndex ?? []) {
    const state = runStates.get(row.id);
    row.object = state ?? null;
    const ended = state?.ended_at ? Date.parse(state.ended_at) : NaN;
    const kill = killTimes.find((k) => k >= ended);
    row.killAfterEndMs = Number.isFinite(ended) && kill !== undefined ? kill - ended : null;
  }
}

/**
 * The D1 event log and runs index, read from the persisted state of every shard and merged: how
 * many runs each status has in the index, and events never marked dispatched. The REST API reads a
 * run's status from its Durable Object, so a stale index row is not a lost run; it is reported as
 * what it is. An event or a run found on two shards is counted as two rows (`n`, duplicates).
 */
export async function readD1() {
  // One `wrangler d1 execute` per shard and list of statements: each costs seconds to start.
  const query = async (shard, ...statements) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [WRANGLER, "d1", "execute", shard, "--local", "--config", paths.config, "--persist-to", paths.persistDir, "--json", "--command", statements.join(";\n")],
      { cwd: ROOT, env: childEnv, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const answers = JSON.parse(stdout).map((answer) => answer.results);
    if (answers.length !== statements.length) throw new Error(`wrangler d1 execute answered ${answers.length} results for ${statements.length} statements on ${shard}`);
    return answers;
  };
  // The same statements on every shard, one shard after the other; each answer the shards' rows together.
  const everyShard = async (...statements) => {
    const answers = statements.map(() => []);
    for (const shard of SHARDS) (await query(shard, ...statements)).forEach((rows, i) => answers[i].push(...rows));
    return answers;
  };
  try {
    const [runs, undispatched, stale, eventRows, allRuns] = await everyShard(
      "SELECT status, COUNT(*) AS n FROM runs GROUP BY status",
      `SELECT id FROM events WHERE ${DISPATCHED_AT} IS NULL`,
      "SELECT * FROM runs WHERE status NOT IN ('Completed', 'Failed', 'Cancelled')",
      // Every event with the root it belongs to (a failure event carries the failed run's event).
      "SELECT id, name, COALESCE(json_extract(data, '$.root'), json_extract(data, '$.event.data.root')) AS root, COUNT(*) AS n FROM events GROUP BY id, name, root",
      "SELECT id, function_id, event_id, status FROM runs",
    );
    const eventIds = [...new Set(stale.map((r) => r.event_id))];
    const [staleEvents] = eventIds.length
      ? await everyShard(`SELECT id, received_at, ${DISPATCHED_AT} AS dispatched_at FROM events WHERE id IN (${eventIds.map((id) => `'${id.replace(/'/g, "''")}'`).join(",")})`)
      : [[]];
    for (const row of stale) row.eventRow = staleEvents.find((e) => e.id === row.event_id) ?? null;
    const runsIndexByStatus = {};
    for (const row of runs) runsIndexByStatus[row.status] = (runsIndexByStatus[row.status] ?? 0) + row.n;
    return { shards: SHARDS, runsIndexByStatus, undispatchedEvents: undispatched.map((r) => r.id), unfinishedInIndex: stale, eventLog: mergeCounted(eventRows), allRuns };
  } catch (err) {
    return { error: String(err) };
  }
}

/** Rows of `SELECT …, COUNT(*) AS n … GROUP BY` from several shards, one per group, their `n` added. */
function mergeCounted(rows) {
  const merged = new Map();
  for (const row of rows) {
    const key = JSON.stringify([row.id, row.name, row.root]);
    const seen = merged.get(key);
    if (seen) seen.n += row.n;
    else merged.set(key, { ...row });
  }
  return [...merged.values()];
}

/**
 * What the wrangler logs say: sweeps that re-enqueued lost events, deliveries the outage made
 * wait, errors (lines about the injected faults are counted, not listed).
 */
export function scanLogs() {
  let reenqueued = 0;
  let sweeps = 0;
  let faultLines = 0;
  let outboxRetries = 0;
  let endRetries = 0;
  const reloads = [];
  const errors = [];
  for (let i = 1; i <= server.life; i++) {
    const file = path.join(paths.outDir, `wrangler-${i}.log`);
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

