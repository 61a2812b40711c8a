// The dev server: freezing the chaos Worker into a build and a config, applying the D1 migrations,
// and starting, killing and stopping `wrangler dev` (one process group a server life).
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { childEnv, freePort, groupAlive, signalGroup, stopProcessGroup } from "../../bench/lib/processes.mjs";
import { killTimes, lives, log, paths, ROOT, server, SHARDS, sleep, SOURCE_CONFIG, WRANGLER } from "./context.mjs";

// The dev server: detached in its own process group, so a kill takes wrangler, esbuild and workerd
// at once, as a machine losing power would. Only groups started here are ever signalled.

/**
 * Builds chaos/index.ts once (`wrangler deploy --dry-run --outdir`) and writes a config next to the
 * build that serves it unbundled: every server life runs the same code, and an edit to sdk/ or
 * worker/ during a run cannot hot-reload the server (a reload drops Durable Objects mid-step, an
 * unplanned crash the checks would count as a duplicate). The config also tells the Worker where
 * the counter is (`CHAOS_COUNTER`), for the cron's runs, whose events carry no data of ours.
 */
export async function freezeWorker(counterUrl) {
  const bundleDir = path.join(paths.outDir, "bundle");
  await promisify(execFile)(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", bundleDir, "--config", SOURCE_CONFIG], {
    cwd: ROOT,
    env: childEnv,
    timeout: 120_000,
  });
  const source = fs.readFileSync(SOURCE_CONFIG, "utf8");
  const main = /^main = ".*"$/m;
  // Every shard's: each `[[d1_databases]]` has its own.
  const migrations = /^migrations_dir = "(.*)"$/gm;
  if (!main.test(source) || !source.match(migrations)) throw new Error(`${SOURCE_CONFIG}: expected a main and a migrations_dir line`);
  const migrationsDir = (dir) => JSON.stringify(path.resolve(path.dirname(SOURCE_CONFIG), dir));
  const vars = /^\[vars\]$/m;
  if (!vars.test(source)) throw new Error(`${SOURCE_CONFIG}: expected a [vars] section`);
  const frozen = source
    .replace(main, `main = "bundle/index.js"\nno_bundle = true`)
    .replace(migrations, (_, dir) => `migrations_dir = ${migrationsDir(dir)}`)
    .replace(vars, `[vars]\nCHAOS_COUNTER = ${JSON.stringify(counterUrl)}`);
  fs.writeFileSync(paths.config, `# Written by chaos/run.mjs from chaos/wrangler.toml: serves the build in bundle/.\n${frozen}`);
}

/** Applies the D1 migrations to every shard in the fresh `--persist-to` dir, with the frozen config, one shard after the other. */
export async function applyMigrations() {
  if (SHARDS[0] !== "DB") throw new Error(`${SOURCE_CONFIG}: expected the first [[d1_databases]] to bind DB, found ${JSON.stringify(SHARDS)}`);
  for (const shard of SHARDS) {
    await promisify(execFile)(process.execPath, [WRANGLER, "d1", "migrations", "apply", shard, "--local", "--config", paths.config, "--persist-to", paths.persistDir], {
      cwd: ROOT,
      env: childEnv,
      timeout: 120_000,
    });
  }
}

let upWaiters = [];

/** Starts the next server life; a start that fails (say, a port taken meanwhile) is tried again twice. */
export async function startServer() {
  for (let tries = 1; ; tries++) {
    try {
      return await startServerOnce();
    } catch (err) {
      if (server.child?.pid) signalGroup(server.child.pid, "SIGKILL");
      server.child = null;
      if (tries >= 3) throw err;
      log(`server life ${server.life} did not start (${String(err.message).split("\n")[0]}); trying again`);
    }
  }
}

async function startServerOnce() {
  server.life++;
  const port = await freePort();
  const inspectorPort = await freePort();
  const logFile = path.join(paths.outDir, `wrangler-${server.life}.log`);
  const fd = fs.openSync(logFile, "a");
  const args = [WRANGLER, "dev", "--config", paths.config, "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", paths.persistDir, "--show-interactive-dev-session=false"];
  const started = Date.now();
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: childEnv, detached: true, stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  server.child = proc;
  server.baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`wrangler dev exited (${proc.exitCode ?? proc.signalCode}); see ${logFile}`);
    try {
      const res = await fetch(`${server.baseUrl}/v1/functions`, { signal: AbortSignal.timeout(3_000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`wrangler dev not ready after 90 s; see ${logFile}`);
    await sleep(100);
  }
  server.up = true;
  lives.push({ life: server.life, readyAt: Date.now(), killedAt: null });
  for (const resolve of upWaiters) resolve();
  upWaiters = [];
  log(`server life ${server.life} ready on ${server.baseUrl} in ${Date.now() - started} ms`);
}

export async function killServer() {
  const proc = server.child;
  server.up = false;
  const at = Date.now();
  killTimes.push(at);
  if (lives.length > 0) lives.at(-1).killedAt = at;
  signalGroup(proc.pid, "SIGKILL");
  const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((resolve) => proc.once("exit", resolve));
  await exited;
  const deadline = Date.now() + 10_000;
  while (groupAlive(proc.pid) && Date.now() < deadline) await sleep(20);
  if (groupAlive(proc.pid)) throw new Error(`process group ${proc.pid} still alive 10 s after SIGKILL`);
  server.child = null;
  return Date.now() - at;
}

export async function stopServer() {
  if (!server.child) return;
  const proc = server.child;
  server.up = false;
  await stopProcessGroup(proc.pid);
  server.child = null;
}

export const whenUp = () => (server.up ? Promise.resolve() : new Promise((resolve) => upWaiters.push(resolve)));
