/** `stepflare migrate`: applies the installed package's D1 migrations, locally or to the remote database. */
import { existsSync, readdirSync, realpathSync } from "node:fs";
import path from "node:path";
import { CliError, packageMigrationsDir, runWrangler, wranglerConfig } from "./project.ts";
import { readWranglerToml } from "./toml.ts";

export interface MigrateOptions {
  remote: boolean;
  config?: string;
  persistTo?: string;
}

/**
 * Checks that the project's `migrations_dir` is the installed package's migrations folder (the
 * migrations of the release it runs), then applies the ones not applied yet with
 * `wrangler d1 migrations apply DB`.
 */
export async function migrate(options: MigrateOptions): Promise<void> {
  const config = wranglerConfig(options.config);
  const projectDir = path.dirname(config);
  checkMigrationsDir(config);
  const args = ["d1", "migrations", "apply", "DB", options.remote ? "--remote" : "--local", "--config", config];
  if (options.persistTo) args.push("--persist-to", options.persistTo);
  await runWrangler(projectDir, args);
}

/** The wrangler.toml's D1 `DB` migrations_dir holds every migration of the installed package, or a CliError says what to set. */
export function checkMigrationsDir(config: string): void {
  const toml = readWranglerToml(config);
  const db = (toml.d1_databases as Record<string, unknown>[] | undefined)?.find((entry) => entry.binding === "DB");
  if (!db) throw new CliError(`${config} has no [[d1_databases]] with binding = "DB": \`npx stepflare doctor\` lists what the engine needs`);
  const wanted = packageMigrationsDir();
  const dir = typeof db.migrations_dir === "string" ? path.resolve(path.dirname(config), db.migrations_dir) : undefined;
  const hint = `set migrations_dir = "${path.relative(path.dirname(config), wanted).split(path.sep).join("/")}" under [[d1_databases]]`;
  if (!dir || !existsSync(dir)) throw new CliError(`the DB database's migrations_dir ${dir ? `(${dir}) does not exist` : "is not set"}: ${hint}`);
  if (realpathSync(dir) === realpathSync(wanted)) return;
  const have = new Set(readdirSync(dir));
  const missing = readdirSync(wanted).filter((file) => file.endsWith(".sql") && !have.has(file));
  if (missing.length > 0) throw new CliError(`the DB database's migrations_dir (${dir}) lacks the package's ${missing.join(", ")}: ${hint}`);
}
