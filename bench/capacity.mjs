// `node bench/capacity.mjs` (npm run bench:capacity): what an event and a 5-step run cost one D1
// database and the queue, measured under `wrangler dev`, and the capacity table those figures give
// (bench/lib/capacity.mjs, docs/performance.md "Capacity").
//
//   node bench/capacity.mjs [--count N] [--rounds R]   (N events or runs a measurement, default 200;
//                                                       R measurements of each, default 3: the median, and the range)
//
// One Stepflare `wrangler dev` (the bench's Worker, a fresh state directory). For each payload (the
// bench's small event data, then data of 1 KiB and of 10 KiB), it sends N events that trigger nothing
// and N events that each start a 5-step run, both ways a sender may: one event per request (10
// requests in flight) and 100 events per request. Around each measurement it reads the billable
// counters (GET /v1/usage: D1 statements and rows written, queue messages, rows written in objects)
// and the D1 database's size as D1 reports it after a query (GET /bench/d1-size, `meta.size_after`:
// the pages of the local SQLite file, what counts against a database's 10 GB). A run is done when
// its last step has called the counter and the counters have stopped moving (its end reaches the
// runs index just after); an event that triggers nothing, once the counters have stopped moving.
// The Scheduler ticks once a minute (sweep, pruning): a tick inside a measurement adds a few
// statements to it, a hundredth of one per run at N = 200. A run still going a second after it
// started writes its runs index row open, then its end: on a busy machine more runs do, so a run's
// statements vary between rounds. D1's time per statement is not measured: Stepflare's meter does not
// add up `meta.duration`, and what SQLite takes on this machine is not what D1 takes to make a write
// durable in several places; the table says instead how long a statement would have to take for one
// database's thread to bind first.
// Prints the figures per event and per run and the table; writes bench/results/capacity.json.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { mapLimit, stepflareClient } from "./lib/clients.mjs";
import { startCounter } from "./lib/counter.mjs";
import { capacityTable, formatCapacityTable, LIMITS } from "./lib/capacity.mjs";
import { freePort, runScript, sleep, startWranglerDev, wrangler } from "./lib/processes.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const CONFIG = "bench/stepflare/wrangler.toml";
const { values: args } = parseArgs({ options: { count: { type: "string", default: "200" }, rounds: { type: "string", default: "3" } } });
const COUNT = Number(args.count);
const ROUNDS = Number(args.rounds);
/** The figures a measurement gives per event or run. */
const FIGURES = ["d1Statements", "d1RowsWritten", "d1Bytes", "queueMessages", "doRowsWritten", "doRequests"];
const STEPS = 5;

/** Event data sizes: the bench's own fields alone (about 80 bytes), then padded to 1 KiB and 10 KiB of JSON. */
const PAYLOADS = [
  { label: "small", bytes: null },
  { label: "1 KiB", bytes: 1024 },
  { label: "10 KiB", bytes: 10 * 1024 },
];
/** How a sender sends: one event a request (10 requests at once), or 100 events a request. */
const MODES = [
  { label: "alone", perRequest: 1, inFlight: 10 },
  { label: "batch of 100", perRequest: 100, inFlight: 1 },
];
/** What an event does: start a 5-step run (the bench's n-steps function), or nothing (no function listens). */
const KINDS = [
  { label: "event", name: "bench/capacity-nothing" },
  { label: "run", name: "bench/n-steps" },
];

const say = (message) => console.log(`capacity: ${message}`);

let server;
let counter;
let tmpDir;

/** The data of event i: the counter's address and tag, padded so its JSON is `bytes` long. */
function eventData(counterUrl, tag, i, bytes) {
  const data = { counter: counterUrl, tag, i, steps: STEPS, pad: "" };
  if (bytes !== null) data.pad = "x".repeat(Math.max(0, bytes - JSON.stringify(data).length));
  return data;
}

async function d1Bytes() {
  const res = await fetch(`${server.url}/bench/d1-size`);
  if (!res.ok) throw new Error(`GET /bench/d1-size answered ${res.status}: ${await res.text()}`);
  return (await res.json()).bytes;
}

/** The counters once they have stopped moving: five reads 200 ms apart that agree. */
async function quietUsage(sf) {
  let last = JSON.stringify(await sf.usage());
  let same = 0;
  for (let i = 0; i < 150 && same < 5; i++) {
    await sleep(200);
    const next = JSON.stringify(await sf.usage());
    same = next === last ? same + 1 : 0;
    last = next;
  }
  if (same < 5) throw new Error("the usage counters kept moving for 30 s");
  return JSON.parse(last);
}

/** One measurement: COUNT events of `kind` with `payload`, sent per `mode`; answers its figures per event. */
async function measure(sf, { kind, payload, mode }, tag) {
  const events = Array.from({ length: COUNT }, (_, i) => ({ name: kind.name, data: eventData(counter.url, tag, i, payload.bytes) }));
  const dataBytes = JSON.stringify(events[0].data).length;
  const before = await quietUsage(sf);
  const bytesBefore = await d1Bytes();
  const done = kind.label === "run" ? counter.expect(tag, COUNT, 180_000) : null;
  const requests = [];
  for (let i = 0; i < events.length; i += mode.perRequest) requests.push(events.slice(i, i + mode.perRequest));
  const ids = (await mapLimit(requests, mode.inFlight, (chunk) => sf.send(chunk))).flat();
  if (done) await done;
  const after = await quietUsage(sf);
  const bytesAfter = await d1Bytes();
  const per = (key) => ((after[key] ?? 0) - (before[key] ?? 0)) / COUNT;
  return {
    kind: kind.label,
    payload: payload.label,
    mode: mode.label,
    dataBytes,
    count: COUNT,
    d1Statements: per("d1Statements"),
    d1RowsWritten: per("d1RowsWritten"),
    d1Bytes: (bytesAfter - bytesBefore) / COUNT,
    queueMessages: per("queueMessages"),
    doRowsWritten: per("doRowsWritten"),
    doRequests: per("doRequests"),
    ids,
  };
}

/** The runs the measurements started, checked through the REST API: each Completed with its output. */
async function checkRuns(sf, ids) {
  const wrong = [];
  await mapLimit(ids, 8, async (id) => {
    const runs = await sf.runsOfEvent(id);
    if (runs.length !== 1 || runs[0].status !== "Completed" || runs[0].output?.steps !== STEPS) wrong.push(`${id}: ${JSON.stringify(runs).slice(0, 200)}`);
  });
  return wrong;
}

const round2 = (n) => Math.round(n * 100) / 100;

/** One measurement's rounds as one: each figure's median, its range over the rounds, and every round's event ids. */
function medianOf(rounds) {
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const figures = Object.fromEntries(FIGURES.map((key) => [key, median(rounds.map((r) => r[key]))]));
  const range = Object.fromEntries(FIGURES.map((key) => [key, [Math.min(...rounds.map((r) => r[key])), Math.max(...rounds.map((r) => r[key]))]]));
  return { ...rounds[0], ...figures, range, rounds: rounds.length, ids: rounds.flatMap((r) => r.ids) };
}

async function main() {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), "stepflare-capacity-"));
  const persistTo = path.join(tmpDir, "state");
  const [port, inspectorPort, counterPort] = [await freePort(), await freePort(), await freePort()];
  await wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo, "--config", CONFIG], { cwd: ROOT });
  server = await startWranglerDev({ name: "capacity", cwd: ROOT, config: CONFIG, port, inspectorPort, persistTo, readyPath: "/v1/functions" });
  counter = await startCounter(counterPort);
  const sf = stepflareClient(server.url);
  // A warm-up outside measurement: the isolate, the Scheduler's first tick, the first objects.
  const warm = "warm-up";
  const warmDone = counter.expect(warm, 20, 60_000);
  await sf.send(Array.from({ length: 20 }, (_, i) => ({ name: "bench/n-steps", data: eventData(counter.url, warm, i, null) })));
  await warmDone;

  const measurements = [];
  let seq = 0;
  for (const payload of PAYLOADS) {
    for (const mode of MODES) {
      for (const kind of KINDS) {
        const rounds = [];
        for (let round = 0; round < ROUNDS; round++) rounds.push(await measure(sf, { kind, payload, mode }, `c${++seq}`));
        const m = medianOf(rounds);
        measurements.push(m);
        say(`${kind.label.padEnd(5)} ${payload.label.padEnd(6)} ${mode.label.padEnd(12)} data ${m.dataBytes} B: ${round2(m.d1Statements)} statements, ${round2(m.d1RowsWritten)} D1 rows written, ${Math.round(m.d1Bytes)} B stored, ${round2(m.queueMessages)} queue messages, ${round2(m.doRowsWritten)} object rows`);
      }
    }
  }
  // Every run measured, checked once all measuring is done (the reads would count otherwise).
  const problems = await checkRuns(
    sf,
    measurements.filter((m) => m.kind === "run").flatMap((m) => m.ids),
  );
  say(`checked ${measurements.filter((m) => m.kind === "run").length * COUNT * ROUNDS} runs: ${problems.length ? `${problems.length} not Completed with the expected output` : "every one Completed with the expected output"}`);

  // A run's figures include its event's (the event-only rows show what of them is the event's).
  const figures = (kind, payload, mode) => measurements.find((m) => m.kind === kind && m.payload === payload && m.mode === mode);
  const measuredFor = (kind) =>
    Object.fromEntries(PAYLOADS.map(({ label: payload }) => [payload, { alone: figures(kind, payload, "alone"), batched: figures(kind, payload, "batch of 100") }]));
  const table = {
    runs: capacityTable({ measured: measuredFor("run"), shards: [1, 4, 16], retentionDays: [7, 30] }),
    events: capacityTable({ measured: measuredFor("event"), shards: [1, 4, 16], retentionDays: [7, 30] }),
  };
  console.log(`\nPer event and per run, median of ${ROUNDS} rounds of ${COUNT} (range), wrangler dev, ${new Date().toISOString().slice(0, 10)}:`);
  const cell = (m, key, round) => `${round(m[key])} (${m.range[key].map(round).join("–")})`;
  for (const m of measurements) {
    console.log(`  ${m.kind.padEnd(5)} ${m.payload.padEnd(6)} ${m.mode.padEnd(12)} statements ${cell(m, "d1Statements", round2)}, rows ${cell(m, "d1RowsWritten", round2)}, bytes ${cell(m, "d1Bytes", Math.round)}, messages ${cell(m, "queueMessages", round2)}`);
  }
  console.log(`\nLimits: ${JSON.stringify(LIMITS)}`);
  console.log(`\n5-step runs a month (each with its event):\n${formatCapacityTable(table.runs)}`);
  console.log(`\nEvents a month that trigger nothing:\n${formatCapacityTable(table.events)}`);
  if (problems.length) console.log(`\nPROBLEMS:\n${problems.map((p) => `  - ${p}`).join("\n")}`);

  const file = path.join(ROOT, "bench", "results", "capacity.json");
  await mkdir(path.dirname(file), { recursive: true });
  const kept = measurements.map(({ ids, ...figures }) => figures);
  await writeFile(file, `${JSON.stringify({ generatedAt: new Date().toISOString(), count: COUNT, rounds: ROUNDS, steps: STEPS, limits: LIMITS, measurements: kept, table, problems }, null, 2)}\n`);
  say("wrote bench/results/capacity.json");
}

await runScript(main, {
  server: () => server,
  cleanup: async () => {
    await server?.stop();
    await counter?.close();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  },
});
