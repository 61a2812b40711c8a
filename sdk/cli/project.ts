/**
 * What the CLI finds on disk: the installed package (its version, its migrations), the user's
 * project (its wrangler.toml, its own wrangler), and how it runs that wrangler. Node only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** A mistake of the user's (a missing file, a bad flag): printed without a stack, exit status 1. */
export class CliError extends Error {}

/** The stepflare package this CLI belongs to: its root folder and package.json. */
export function packageInfo(): { root: string; version: string; devDependencies: Record<string, string> } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version: string; devDependencies?: Record<string, string> };
      if (pkg.name === "stepflare") return { root: dir, version: pkg.version, devDependencies: pkg.devDependencies ?? {} };
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("the stepflare package's package.json was not found above the CLI");
    dir = parent;
  }
}

/** The D1 migrations the installed package ships. */
export function packageMigrationsDir(): string {
  return path.join(packageInfo().root, "migrations");
}

/** The project's wrangler.toml (`--config`, else ./wrangler.toml), or a CliError naming what is missing. */
export function wranglerConfig(config: string | undefined, cwd = process.cwd()): string {
  const file = path.resolve(cwd, config ?? "wrangler.toml");
  if (!existsSync(file)) {
    throw new CliError(`no ${path.relative(cwd, file) || file} here: run the command in a Stepflare project (\`npx stepflare init <dir>\` makes one), or pass --config <path>`);
  }
  return file;
}

/** The project's own wrangler (node_modules/.bin/wrangler in the project or a folder above it). */
export function wranglerBin(projectDir: string): string {
  const name = process.platform === "win32" ? "wrangler.cmd" : "wrangler";
  let dir = projectDir;
  for (;;) {
    const bin = path.join(dir, "node_modules", ".bin", name);
    if (existsSync(bin)) return bin;
    const parent = path.dirname(dir);
    if (parent === dir) throw new CliError(`wrangler is not installed in this project: npm install --save-dev wrangler@${supportedWrangler()}`);
    dir = parent;
  }
}

/** The wrangler this release is built and tested with. */
export function supportedWrangler(): string {
  return packageInfo().devDependencies.wrangler ?? "4";
}

/** Starts the project's wrangler with `args`, its output on this terminal. */
export function spawnWrangler(projectDir: string, args: string[]): ChildProcess {
  return spawn(wranglerBin(projectDir), args, { cwd: projectDir, stdio: "inherit", shell: process.platform === "win32" });
}

/** Runs the project's wrangler with `args` to its end; a CliError when it fails. */
export function runWrangler(projectDir: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnWrangler(projectDir, args);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new CliError(`wrangler ${args.join(" ")} failed (${signal ?? `exit status ${code}`})`));
    });
  });
}
