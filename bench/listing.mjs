// `node bench/listing.mjs` (npm run bench:listing): how fast `GET /v1/runs` pages through a runs
// index of 100,000 rows, under `wrangler dev` on this machine.
//
//   node bench/listing.mjs [--runs N] [--limit L]     (default 100,000 rows, 100 per page)
//
// Fills the D1 runs index of a fresh state directory with N rows (one SQL statement, before the
// server starts: the listing reads only the index), then walks every page newest first with the
// cursor, timing each request, and the same for one function's runs and a status filter. Prints the
// first and the 1,000th page's times (and the median of all), which cursor pagination keeps equal;
// OFFSET would make the 1,000th page read 100,000 rows.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort, runScript, startWranglerDev, wrangler } from "./lib/processes.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const CONFIG = "bench/stepflare/wrangler.toml";
const { values: args } = parseArgs({ options: { runs: { type: "string", default: "100000" }, limit: { type: "string", default: "100" } } });
const RUNS = Number(args.runs);
const LIMIT = Number(args.limit);
const FUNCTIONS = 10;

const say = (message) => console.log(`listing: ${message}`);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

let server;
let tmpDir;

/** Walks every page of `query`, answering each page's round-trip time (ms) and the rows seen. */
async function walk(query) {
  const times = [];
  let rows = 0;
  let cursor = null;
  do {
    const t0 = performance.now();
    const response = await fetch(`${server.url}/v1/runs?${query ? `${query}&` : ""}limit=${LIMIT}${cursor ? `&cursor=${cursor}` : ""}`);
    const body = await response.json();
    times.push(performance.now() - t0);
    if (response.status !== 200) throw new Error(`GET /v1/runs?${query} answered ${response.status}: ${JSON.stringify(body)}`);
    rows += body.data.length;
    cursor = body.next_cursor;
  } while (cursor);
  return { times, rows };
}

async function main() {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), "stepflare-listing-"));
  const persistTo = path.join(tmpDir, "state");
  await wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo, "--config", CONFIG], { cwd: ROOT });
  say(`filling the runs index with ${RUNS} rows`);
  const t0 = Date.now() - RUNS * 1000;
  const fill = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${RUNS - 1})
    INSERT INTO runs (id, function_id, event_id, status, started_at, ended_at)
    SELECT printf('run-%07d', i), 'fn-' || (i % ${FUNCTIONS}), printf('event-%07d', i), CASE WHEN i % 50 = 0 THEN 'Failed' ELSE 'Completed' END, ${t0} + i * 1000, ${t0} + i * 1000 + 20 FROM n`;
  await wrangler(["d1", "execute", "DB", "--local", "--persist-to", persistTo, "--config", CONFIG, "--command", fill], { cwd: ROOT, timeout: 600_000 });
  const [port, inspectorPort] = [await freePort(), await freePort()];
  server = await startWranglerDev({ name: "listing", cwd: ROOT, config: CONFIG, port, inspectorPort, persistTo, readyPath: "/v1/functions" });
  // One request first, so the first page timed is not the isolate's start.
  await fetch(`${server.url}/v1/runs?limit=1`);
  const lines = [];
  for (const [label, query] of [["all runs", ""], ["one function", "function_id=fn-3"], ["status Failed", "status=Failed"]]) {
    const { times, rows } = await walk(query);
    const at = (n) => (times[n - 1] === undefined ? "—" : `${times[n - 1].toFixed(1)} ms`);
    lines.push(`${label.padEnd(14)} ${String(times.length).padStart(5)} pages, ${String(rows).padStart(6)} rows: first ${at(1)}, 1,000th ${at(1000)}, last ${at(times.length)}, median ${median(times).toFixed(1)} ms`);
  }
  say(`runs index of ${RUNS} rows, ${LIMIT} per page:`);
  for (const line of lines) console.log(`  ${line}`);
}

await runScript(main, {
  server: () => server,
  cleanup: async () => {
    await server?.stop();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  },
});
