/** `stepflare migrate`: applies the installed package's D1 migrations to every shard, locally or to the remote databases. */
import { existsSync, readdirSync, realpathSync } from "node:fs";
import path from "node:path";
import { CliError, runWrangler, packageMigrationsDir, wranglerConfig } from "./project.ts";
import { shardDatabases } from "./shards.ts";
import { readWranglerToml } from "./toml.ts";

export interface MigrateOptions {
  remote: boolean;
  config?: string;
  persistTo?: string;
}

/**
 * Checks that every shard's `migrations_dir` is the installed package's migrations folder (the
 * migrations of the release it runs), then applies the ones not applied yet to each shard.
 */
export async function migrate(options: MigrateOptions): Promise<void> {
  const config = wranglerConfig(options.config);
  checkMigrationsDir(config);
  await applyMigrations(config, options);
}

/**
 * `wrangler d1 migrations apply <binding>` for DB and each DB_<n> the config binds, one after another (a
 * remote apply may ask to confirm, on this terminal).
 */
export async function applyMigrations(config: string, options: { remote: boolean; persistTo?: string }): Promise<void> {
  for (const { binding } of shardDatabases(readWranglerToml(config))) {
    const args = ["d1", "migrations", "apply", binding, options.remote ? "--remote" : "--local", "--config", config];
    if (options.persistTo) args.push("--persist-to", options.persistTo);
    await runWrangler(path.dirname(config), args);
  }
}

/** Every shard's (DB's, DB_1's, …) migrations_dir holds every migration of the installed package, or a CliError says what to set. */
export function checkMigrationsDir(config: string): void {
  const shards = shardDatabases(readWranglerToml(config));
  if (shards[0]?.binding !== "DB") throw new CliError(`${config} has no [[d1_databases]] with binding = "DB": \`npx stepflare doctor\` lists what the engine needs`);
  const wanted = packageMigrationsDir();
  for (const { binding, entry } of shards) {
    const dir = typeof entry.migrations_dir === "string" ? path.resolve(path.dirname(config), entry.migrations_dir) : undefined;
    const hint = `set migrations_dir = "${path.relative(path.dirname(config), wanted).split(path.sep).join("/")}" under the [[d1_databases]] bound as ${binding}`;
    if (!dir || !existsSync(dir)) throw new CliError(`the ${binding} database's migrations_dir ${dir ? `(${dir}) does not exist` : "is not set"}: ${hint}`);
    if (realpathSync(dir) === realpathSync(wanted)) continue;
    const have = new Set(readdirSync(dir));
    const missing = readdirSync(wanted).filter((file) => file.endsWith(".sql") && !have.has(file));
    if (missing.length > 0) throw new CliError(`the ${binding} database's migrations_dir (${dir}) lacks the package's ${missing.join(", ")}: ${hint}`);
  }
}
