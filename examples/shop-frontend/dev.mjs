// `npm run dev:shop`: Stepflare and the shop's own Worker side by side, each on its own port, with one command.
//
// Two `wrangler dev` processes, not one with two `-c` configs: with two configs only the first Worker gets a
// port, and wrangler gives `--var` (dev mode) and `--persist-to` to that first Worker alone, so Stepflare's
// dashboard could not be reached and its D1 state would land in the shop's folder (`no such table: runs`).
// Here Stepflare runs exactly as `npm run dev` runs it (its migrations applied to the repository's
// .wrangler/state, dev mode, the dashboard on its port), and the shop's STEPFLARE service binding reaches it
// through wrangler's local dev registry, as bindings between two `wrangler dev` sessions do.
//
//   npm run dev:shop                                  # Stepflare on :8787, the shop on :8788
//   npm run dev:shop -- --port 9000 --shop-port 9001  # other ports
//
// Ctrl-C stops both; if either stops, the other is stopped too.
import { spawn } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort, signalGroup, sleep, stopProcessGroup } from "../../bench/lib/processes.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const NPX = process.platform === "win32" ? "npx.cmd" : "npx";
const { values } = parseArgs({ options: { port: { type: "string", default: "8787" }, "shop-port": { type: "string", default: "8788" } } });
const stepflarePort = Number(values.port);
const shopPort = Number(values["shop-port"]);

/** Runs `npx wrangler ...args` in its own process group, its output on ours. */
function wrangler(args) {
  return spawn(NPX, ["wrangler", ...args], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"], detached: true });
}

function exited(child) {
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

const migrations = wrangler(["d1", "migrations", "apply", "DB", "--local"]);
const migrated = await exited(migrations);
if (migrated !== 0) process.exit(migrated);

// Each its own inspector port: two dev servers would both ask for wrangler's default (9229).
const children = [
  wrangler(["dev", "--port", String(stepflarePort), "--inspector-port", String(await freePort()), "--test-scheduled", "--var", "STEPFLARE_DEV:1"]),
  wrangler(["dev", "-c", "examples/shop-frontend/wrangler.toml", "--port", String(shopPort), "--inspector-port", String(await freePort())]),
];

let stopping = false;
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  await Promise.all(children.map((child) => (child.pid === undefined ? undefined : stopProcessGroup(child.pid))));
  process.exit(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));
// Last resort if this process dies some other way: the groups of our own children only.
process.on("exit", () => children.forEach((child) => child.pid !== undefined && signalGroup(child.pid, "SIGKILL")));
for (const child of children) void exited(child).then((code) => stopAll(code));

/** True once `url` answers at all (any status under 500). */
async function answers(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status < 500;
  } catch {
    return false;
  }
}

const deadline = Date.now() + 120_000;
while (!stopping && Date.now() < deadline) {
  if ((await answers(`http://127.0.0.1:${stepflarePort}/v1/functions`)) && (await answers(`http://127.0.0.1:${shopPort}/runs/none`))) {
    console.log(`\nStepflare's dashboard: http://localhost:${stepflarePort}/   the shop: http://localhost:${shopPort}/ (see examples/shop-frontend/README.md)\n`);
    break;
  }
  await sleep(250);
}
