/**
 * `wrangler dev` as a user runs it (`npm run dev`: `--test-scheduled`, dev mode by `--var STEPFLARE_DEV:1`), for end-to-end tests:
 * migrations applied to a fresh `--persist-to` directory (to every D1 shard the configs bind: DB, DB_1, …), then the dev server on a free port of 127.0.0.1, detached in its own
 * process group, which `stop()` (and a process exit hook) kills by group id: wrangler starts npm,
 * node, esbuild and workerd children, and none may outlive the test.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort, signalGroup, sleep, stopProcessGroup } from "../../bench/lib/processes.mjs";
import { readWranglerToml } from "../../sdk/cli/toml.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const NPX = process.platform === "win32" ? "npx.cmd" : "npx";
const READY_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 50;

// A quiet, non-interactive wrangler that never phones home.
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1", FORCE_COLOR: "0" };

export interface DevServer {
  baseUrl: string;
  /** The tail of what wrangler printed, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts `wrangler dev` with `configs` (the first is the Worker on the port; the others run beside
 * it, reachable through service bindings) and waits until `readyPath` answers. On `port` if given
 * (a test that must share a machine with others picks its own), else on a free one. In dev mode
 * unless `devMode` is false; `vars` are passed as `--var NAME:VALUE` (the secrets of a closed Worker).
 * The D1 migrations are applied to every shard a config binds (DB, DB_1, …: each needs every one);
 * `migrations: false` skips them, for a Worker without its database. With
 * `persistDir` the server keeps its state there (a second start finds it; the caller removes it),
 * else in a fresh directory that `stop()` removes.
 */
export async function startDevServer(
  configs: string[],
  readyPath: string,
  options: { port?: number; devMode?: boolean; vars?: Record<string, string>; migrations?: boolean; persistDir?: string } = {},
): Promise<DevServer> {
  const persistDir = options.persistDir ?? (await mkdtemp(path.join(os.tmpdir(), "stepflare-e2e-")));
  const port = options.port ?? (await freePort());
  // Its own inspector port too: wrangler's default (9229) is taken by any other dev server on the machine (a second test run beside this one).
  const inspectorPort = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  if (options.migrations !== false) await applyMigrations(configs, persistDir);

  let log = "";
  const configArgs = configs.flatMap((config) => ["-c", config]);
  const vars = { ...(options.devMode === false ? {} : { STEPFLARE_DEV: "1" }), ...options.vars };
  const varArgs = Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]);
  const server: ChildProcess = spawn(
    NPX,
    ["wrangler", "dev", ...configArgs, "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", persistDir, "--test-scheduled", ...varArgs, "--show-interactive-dev-session=false"],
    { cwd: ROOT, env: childEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-64_000);
  };
  server.stdout?.on("data", keep);
  server.stderr?.on("data", keep);
  // Last resort if the test process dies before stop(): synchronous, the group of our own child only.
  const killOnExit = () => {
    if (server.pid !== undefined) signalGroup(server.pid, "SIGKILL");
  };
  process.once("exit", killOnExit);
  const dev: DevServer = {
    baseUrl,
    log: () => log,
    async stop() {
      if (server.pid !== undefined) await stopProcessGroup(server.pid);
      process.removeListener("exit", killOnExit);
      if (!options.persistDir) await rm(persistDir, { recursive: true, force: true });
    },
  };
  await waitFor(`wrangler dev on ${baseUrl}`, READY_TIMEOUT_MS, dev, async () => {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw Object.assign(new Error(`wrangler dev exited (${server.exitCode ?? server.signalCode})\n${log.slice(-4000)}`), { fatal: true });
    }
    const res = await fetch(`${baseUrl}${readyPath}`, { signal: AbortSignal.timeout(2_000) });
    return res.status < 500 ? true : undefined;
  });
  return dev;
}

/** The bindings of the `[[d1_databases]]` of `config` that Stepflare uses as shards: DB, DB_1, DB_2, … */
function shardBindings(config: string): string[] {
  const databases = readWranglerToml(path.resolve(ROOT, config)).d1_databases;
  return (Array.isArray(databases) ? databases : []).flatMap((database) => {
    const binding = typeof database === "object" && !Array.isArray(database) ? database.binding : undefined;
    return typeof binding === "string" && /^DB(_[1-9][0-9]*)?$/.test(binding) ? [binding] : [];
  });
}

/**
 * Applies the migrations to every shard of every config, one after the other (the local databases
 * share a metadata file: two applies at once met SQLITE_BUSY); again on a directory that has them, none.
 */
async function applyMigrations(configs: string[], persistDir: string): Promise<void> {
  for (const config of configs) {
    for (const binding of shardBindings(config)) {
      await promisify(execFile)(NPX, ["wrangler", "d1", "migrations", "apply", binding, "--local", "--config", config, "--persist-to", persistDir], { cwd: ROOT, env: childEnv, timeout: 60_000 });
    }
  }
}

/** Polls `probe` until it answers something other than undefined, or throws when `timeoutMs` passes. */
export async function waitFor<T>(what: string, timeoutMs: number, dev: Pick<DevServer, "log">, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}\n--- wrangler output (tail) ---\n${dev.log().slice(-4000)}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}
