// Child processes the bench starts: each `wrangler dev` runs detached in its own process group, so
// stopping it kills wrangler and its workerd/esbuild children by group id. Only groups started here
// are ever signalled.
import { execFile, spawn } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";

const NPX = process.platform === "win32" ? "npx.cmd" : "npx";

/** A quiet, non-interactive wrangler that never phones home. */
// CLOUDFLARE_CF_FETCH_ENABLED=false: miniflare would otherwise try to download `Request.cf` data at
// every (re)start, which fails offline.
export const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1", FORCE_COLOR: "0", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

const started = new Set();

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `npx wrangler ...args` to completion and answers its stdout. */
export async function wrangler(args, { cwd, timeout = 120_000 } = {}) {
  const { stdout } = await promisify(execFile)(NPX, ["wrangler", ...args], { cwd, env: childEnv, timeout, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/**
 * Starts `wrangler dev` for `config` on 127.0.0.1:`port` (with `vars` as `--var NAME:VALUE`) and waits
 * until `readyPath` answers 2xx. Answers { name, url, log(), stop() }.
 */
export async function startWranglerDev({ name, cwd, config, port, inspectorPort, persistTo, readyPath, readyTimeoutMs = 90_000, vars = {} }) {
  const varArgs = Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  const args = ["wrangler", "dev", "--config", config, "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", persistTo, "--show-interactive-dev-session=false", "--log-level", process.env.BENCH_LOG_LEVEL ?? "log", ...varArgs];
  const child = spawn(NPX, args, { cwd, env: childEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  let log = "";
  const t0 = Date.now();
  // Each chunk stamped with seconds since start, to line stalls up with what the server said.
  const keep = (chunk) => {
    log = (log + `[+${((Date.now() - t0) / 1000).toFixed(1)}s] ${chunk.toString()}`).slice(-400_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const server = {
    name,
    url,
    child,
    log: () => log,
    stop: () => stopGroup(child),
  };
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name}: wrangler dev exited (${child.exitCode ?? child.signalCode})\n${log.slice(-4000)}`);
    }
    try {
      const res = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(3_000) });
      await res.arrayBuffer();
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopGroup(child);
      throw new Error(`${name}: not ready after ${readyTimeoutMs} ms\n${log.slice(-4000)}`);
    }
    await sleep(200);
  }
}

/** Resident memory of the processes in the group `pid` leads (wrangler, workerd, esbuild), in MB; null where `ps` cannot tell. */
export async function groupRssMb(pid) {
  try {
    const { stdout } = await promisify(execFile)("ps", ["-e", "-o", "pgid=,rss="]);
    const kb = stdout
      .split("\n")
      .map((line) => line.trim().split(/\s+/).map(Number))
      .filter(([pgid]) => pgid === pid)
      .reduce((sum, [, rss]) => sum + (rss || 0), 0);
    return kb > 0 ? Math.round(kb / 1024) : null;
  } catch {
    return null;
  }
}

/** Sends `signal` to the process group `pid` leads, if it is still there. */
export function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** True while any process of the group `pid` leads is alive. */
export function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the child's whole group, then SIGKILL if anything in it is still alive after 5 s. */
export async function stopGroup(child) {
  const pid = child.pid;
  if (pid === undefined || !started.has(child)) return;
  await stopProcessGroup(pid);
  started.delete(child);
}

/** SIGTERM to the process group `pid` leads, then SIGKILL if anything in it is still alive after 5 s. */
export async function stopProcessGroup(pid) {
  signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + 5_000;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pid)) {
    signalGroup(pid, "SIGKILL");
    while (groupAlive(pid) && Date.now() < deadline + 5_000) await sleep(100);
  }
}

/** Last resort when the bench itself dies: synchronous SIGKILL to the groups started here, and only those. */
export function killStartedSync() {
  for (const child of started) if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
  started.clear();
}

/**
 * Runs a bench script's `main`: a failure prints its error and the last of the server's output and
 * sets a failing exit code; `cleanup` stops what the script started, whatever happened, and so does
 * the kill of every process group left.
 *
 * @example
 * await runScript(main, { server: () => server, cleanup: async () => { await server?.stop(); } });
 */
export async function runScript(main, { server, cleanup }) {
  try {
    await main();
  } catch (err) {
    console.error(err);
    console.error(server()?.log().slice(-4000) ?? "");
    process.exitCode = 1;
  } finally {
    await cleanup();
    killStartedSync();
  }
}

