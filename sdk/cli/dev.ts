/**
 * `stepflare dev`: the local dev server. Applies the D1 migrations to every shard, starts the project's `wrangler dev`
 * in dev mode with cron testing, prints where the dashboard is, and keeps Inngest SDK apps (`--app`)
 * synced: like Inngest's Dev Server, which polls the apps it knows every few seconds, it syncs each
 * app again every `--sync-interval` seconds (`POST /v1/apps`), so a changed app's functions follow.
 */
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { applyMigrations, checkMigrationsDir } from "./migrate.ts";
import { CliError, spawnWrangler, wranglerConfig } from "./project.ts";

export interface DevOptions {
  port: number;
  ip: string;
  apps: string[];
  syncIntervalMs: number;
  config?: string;
  persistTo?: string;
  /** More arguments for `wrangler dev` (after `--`). */
  wranglerArgs: string[];
}

const READY_TIMEOUT_MS = 120_000;

export async function dev(options: DevOptions): Promise<number> {
  const config = wranglerConfig(options.config);
  const projectDir = path.dirname(config);
  checkMigrationsDir(config);
  await applyMigrations(config, { remote: false, ...(options.persistTo ? { persistTo: options.persistTo } : {}) });
  const persist = options.persistTo ? ["--persist-to", options.persistTo] : [];

  const args = ["dev", "--config", config, "--ip", options.ip, "--port", String(options.port), "--test-scheduled", "--var", "STEPFLARE_DEV:1", ...persist, ...options.wranglerArgs];
  const child = spawnWrangler(projectDir, args);
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    child.on("error", () => resolve(1));
  });
  // Ctrl-C and a kill reach wrangler too; this process ends when it does.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (child.exitCode === null) child.kill(signal);
    });
  }

  const host = options.ip === "localhost" || options.ip === "0.0.0.0" ? "127.0.0.1" : options.ip;
  const base = `http://${host.includes(":") ? `[${host}]` : host}:${options.port}`;
  const shown = `http://${options.ip === "0.0.0.0" ? "localhost" : options.ip}:${options.port}`;
  const ready = await Promise.race([waitReady(base), exited.then(() => false)]);
  if (!ready) {
    if (child.exitCode === null) console.error(`stepflare dev: ${base} did not answer within ${READY_TIMEOUT_MS / 1000} s`);
    child.kill("SIGTERM");
    return await exited;
  }
  console.log(`\nStepflare dev server ready\n  dashboard  ${shown}/\n  events     POST ${shown}/e/dev\n  REST API   ${shown}/v1/functions\n`);
  for (const url of options.apps) void keepSynced(base, url, options.syncIntervalMs, () => child.exitCode !== null);
  return await exited;
}

async function waitReady(base: string): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/v1/functions`, { signal: AbortSignal.timeout(2_000) });
      if (res.status < 500) return true;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  return false;
}

/** Syncs the app at `url` now and every `intervalMs`, saying so when its functions change or a sync starts or stops failing. */
async function keepSynced(base: string, url: string, intervalMs: number, stopped: () => boolean): Promise<void> {
  let last: string | undefined;
  let failing: string | undefined;
  while (!stopped()) {
    try {
      const res = await fetch(`${base}/v1/apps`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ url }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await res.json()) as { data?: { id: string; functions: { id: string; triggers: unknown[] }[] }; error?: string };
      if (!res.ok || !body.data) throw new Error(body.error ?? `status ${res.status}`);
      const functions = JSON.stringify(body.data.functions);
      if (functions !== last || failing !== undefined) {
        console.log(`stepflare dev: synced app ${body.data.id} from ${url}: ${body.data.functions.map((fn) => fn.id).join(", ") || "no functions"}`);
      }
      last = functions;
      failing = undefined;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message !== failing) console.error(`stepflare dev: could not sync ${url} (trying again every ${intervalMs / 1000} s): ${message}`);
      failing = message;
    }
    await sleep(intervalMs);
  }
}

export function parsePort(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!/^[0-9]+$/.test(raw) || port < 1 || port > 65_535) throw new CliError(`--port must be a port number (1-65535), not ${JSON.stringify(raw)}`);
  return port;
}

export function parseAppUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--app must be the URL of an Inngest SDK app's serve endpoint (http://localhost:3000/api/inngest), not ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CliError(`--app must be an http(s) URL, not ${JSON.stringify(raw)}`);
  return url.toString();
}
