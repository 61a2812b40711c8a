/**
 * `stepflare doctor`: checks a project's wrangler.toml for every binding, Durable Object migration and
 * cron the engine needs, and the secrets a deploy needs, and says what is missing and how to add it.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { SIGNING_KEY_FORM } from "../../worker/platform/env.ts";
import { checkMigrationsDir } from "./migrate.ts";
import { wranglerBin, wranglerConfig } from "./project.ts";
import { shardDatabases, shardsUsed } from "./shards.ts";
import { readWranglerToml, type TomlTable, type TomlValue } from "./toml.ts";

export interface Finding {
  level: "error" | "warning";
  message: string;
}

/** The Durable Object classes the engine exports from `stepflare/worker`, by binding, and the release migration that created each. */
export const DURABLE_OBJECTS = [
  { binding: "RUNS", className: "RunObject", tag: "v1" },
  { binding: "SCHEDULER", className: "Scheduler", tag: "v1" },
  { binding: "FLOWS", className: "FlowObject", tag: "v2" },
] as const;

/** The secrets a deployed (closed) Worker needs: worker/platform/env.ts. */
export const DEPLOY_SECRETS = [
  { name: "STEPFLARE_SIGNING_KEY", what: "the REST API's and dashboard's bearer token, and remote apps' signing key (`openssl rand -hex 32`)" },
  { name: "STEPFLARE_EVENT_KEYS", what: "the event keys POST /e/:key accepts, comma-separated" },
] as const;

const PLACEHOLDER_ID = /^0{8}-0{4}-0{4}-0{4}-0{12}$/;

function tables(value: TomlValue | undefined): TomlTable[] {
  return Array.isArray(value) ? value.filter((item): item is TomlTable => typeof item === "object" && !Array.isArray(item)) : [];
}

function strings(value: TomlValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

/** What is wrong with the wrangler.toml at `config` (parsed as `toml`), for the engine and for a deploy. */
export function checkConfig(config: string, toml: TomlTable): Finding[] {
  const findings: Finding[] = [];
  const error = (message: string) => findings.push({ level: "error", message });
  const warning = (message: string) => findings.push({ level: "warning", message });

  if (typeof toml.main !== "string") error('no main: set main = "src/index.ts" (the module that exports serve() and `export * from "stepflare/worker"`)');
  const flags = strings(toml.compatibility_flags);
  if (!flags.includes("nodejs_als") && !flags.includes("nodejs_compat")) error('compatibility_flags lacks "nodejs_als" (or "nodejs_compat"): the engine uses AsyncLocalStorage');
  if (typeof toml.compatibility_date !== "string") error('no compatibility_date: set compatibility_date = "2026-04-01" or later');

  // D1: the database and its shards (DB_1, DB_2, …), their migrations, each a database of its own.
  const shards = shardDatabases(toml);
  if (shards[0]?.binding !== "DB") error('no D1 database bound as DB: add [[d1_databases]] binding = "DB", database_name, database_id (from `wrangler d1 create <name>`) and migrations_dir = "node_modules/stepflare/migrations"');
  else {
    try {
      checkMigrationsDir(config);
    } catch (err) {
      error((err as Error).message);
    }
    const used = shardsUsed(shards);
    for (const shard of shards.filter((s) => !used.includes(s))) {
      error(`${shard.binding} is bound but DB_${used.length} is not: the Worker uses DB, DB_1, … up to the first missing number, so ${shard.binding} is never read; number the shards without a gap`);
    }
    const byId = new Map<string, string>();
    for (const { binding, entry } of shards) {
      if (typeof entry.database_id !== "string" || PLACEHOLDER_ID.test(entry.database_id)) {
        error(`the ${binding} database's database_id is ${typeof entry.database_id === "string" ? "a placeholder" : "not set"} (fine for \`wrangler dev\`, not for a deploy): run \`npx wrangler d1 create ${String(entry.database_name ?? "<name>")}\` and put its id in database_id`);
      }
      const id = typeof entry.database_id === "string" ? entry.database_id : undefined;
      const twin = id === undefined ? undefined : byId.get(id);
      if (twin) error(`${binding} has the same database_id as ${twin}: each shard must be a database of its own (\`npx wrangler d1 create <name>\` makes one; locally too, wrangler keeps one database per id)`);
      else if (id !== undefined) byId.set(id, binding);
    }
  }

  // The Queue: produced to as EVENTS, consumed by this Worker.
  const queues = (toml.queues ?? {}) as TomlTable;
  const producer = tables(queues.producers).find((entry) => entry.binding === "EVENTS");
  if (!producer || typeof producer.queue !== "string") error('no Queue producer bound as EVENTS: add [[queues.producers]] binding = "EVENTS", queue = "stepflare-events"');
  else {
    const consumer = tables(queues.consumers).find((entry) => entry.queue === producer.queue);
    if (!consumer) error(`this Worker does not consume its queue ${producer.queue}: add [[queues.consumers]] queue = "${producer.queue}"`);
    else if (consumer.max_batch_timeout !== 0) warning(`the consumer of ${producer.queue} has max_batch_timeout = ${String(consumer.max_batch_timeout ?? "5 (the default)")}: each event waits that long before its runs start; 0 is what Stepflare is tested with`);
  }

  // Durable Objects: the bindings, and a migration tag creating each class with SQLite storage.
  const bindings = tables((toml.durable_objects as TomlTable | undefined)?.bindings);
  const migrations = tables(toml.migrations);
  for (const object of DURABLE_OBJECTS) {
    const binding = bindings.find((entry) => entry.name === object.binding);
    if (!binding) error(`no Durable Object bound as ${object.binding}: add [[durable_objects.bindings]] name = "${object.binding}", class_name = "${object.className}"`);
    else if (binding.class_name !== object.className) error(`the Durable Object binding ${object.binding} names class ${String(binding.class_name)}, not ${object.className}`);
    if (migrations.some((m) => strings(m.new_sqlite_classes).includes(object.className))) continue;
    if (migrations.some((m) => strings(m.new_classes).includes(object.className))) error(`${object.className} is created in new_classes (key-value storage): Stepflare's objects need SQLite storage (new_sqlite_classes)`);
    else error(`no Durable Object migration creates ${object.className}: add [[migrations]] tag = "${object.tag}", new_sqlite_classes = [${DURABLE_OBJECTS.filter((o) => o.tag === object.tag).map((o) => `"${o.className}"`).join(", ")}] (tags must be unique and in order after your own)`);
  }
  const tags = migrations.map((m) => m.tag);
  if (new Set(tags).size !== tags.length) error(`the [[migrations]] tags repeat (${tags.join(", ")}): each tag must be unique`);

  const crons = strings((toml.triggers as TomlTable | undefined)?.crons);
  if (!crons.includes("* * * * *")) error('no every-minute cron: add [triggers] crons = ["* * * * *"] (the tick that starts cron functions and sweeps retention)');

  const vars = (toml.vars ?? {}) as TomlTable;
  if ("STEPFLARE_DEV" in vars) error("[vars] sets STEPFLARE_DEV: a deploy of this file is open to anyone (no event key, no API token); keep dev mode in .dev.vars, which `wrangler deploy` never reads");
  for (const secret of DEPLOY_SECRETS) if (secret.name in vars) error(`[vars] sets ${secret.name} in plain text: remove it and use \`npx wrangler secret put ${secret.name}\``);

  if (toml.upload_source_maps !== true) warning("upload_source_maps is not true: errors of the deployed Worker show bundle lines, not your source (add upload_source_maps = true)");
  const observability = toml.observability as TomlTable | undefined;
  if (observability?.enabled !== true) warning("[observability] is not enabled: the engine's JSON logs are kept only while `wrangler tail` runs (add [observability] enabled = true)");
  return findings;
}

/** The D1 shards the config binds, as `stepflare doctor` lists them. */
export function describeShards(toml: TomlTable): string {
  const shards = shardsUsed(shardDatabases(toml));
  if (shards.length === 0) return "D1 shards: none (no database bound as DB)";
  if (shards.length === 1) return "D1 shards: DB alone (more databases bound as DB_1, DB_2, … spread the event log, the runs index and the waits: Stepflare's docs/shards.md)";
  return `D1 shards: ${shards.map((shard) => `${shard.binding} (${String(shard.entry.database_name ?? "no database_name")})`).join(", ")}: ${shards.length} databases`;
}

/** Checks `.dev.vars` beside the config: dev mode for local runs, and a signing key in a form the engine takes. */
export function checkDevVars(config: string): Finding[] {
  const file = path.join(path.dirname(config), ".dev.vars");
  if (!existsSync(file)) return [{ level: "warning", message: "no .dev.vars: plain `wrangler dev` is closed (503) without STEPFLARE_DEV=1 there (`npx stepflare dev` sets it anyway)" }];
  const vars = new Map(
    readFileSync(file, "utf8")
      .split(/\r?\n/)
      .map((line) => /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"?([^"]*)"?\s*$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1]!, match[2]!]),
  );
  const findings: Finding[] = [];
  const key = vars.get("STEPFLARE_SIGNING_KEY");
  if (key !== undefined && !SIGNING_KEY_FORM.test(key)) findings.push({ level: "error", message: ".dev.vars: STEPFLARE_SIGNING_KEY is not 64 lowercase hex characters (alone or after signkey-<env>-): the Worker refuses it" });
  if (vars.get("STEPFLARE_DEV") !== "1" && key === undefined) findings.push({ level: "warning", message: ".dev.vars has neither STEPFLARE_DEV=1 nor a STEPFLARE_SIGNING_KEY: plain `wrangler dev` answers 503" });
  return findings;
}

/** The secrets the deployed Worker has (`wrangler secret list`), and which of DEPLOY_SECRETS it lacks. */
export async function checkDeployedSecrets(config: string): Promise<Finding[]> {
  const projectDir = path.dirname(config);
  try {
    const { stdout } = await promisify(execFile)(wranglerBin(projectDir), ["secret", "list", "--format", "json", "--config", config], { cwd: projectDir, timeout: 60_000 });
    const names = new Set((JSON.parse(stdout) as { name: string }[]).map((secret) => secret.name));
    return DEPLOY_SECRETS.filter((secret) => !names.has(secret.name)).map((secret) => ({
      level: "error" as const,
      message: `the deployed Worker has no ${secret.name} secret (${secret.what}): \`npx wrangler secret put ${secret.name}\``,
    }));
  } catch (err) {
    return [{ level: "error", message: `could not list the deployed Worker's secrets (\`wrangler secret list\`: logged in? deployed yet?): ${String((err as Error).message).split("\n")[0]}` }];
  }
}

/** Runs every check, prints the findings, and answers whether there was no error. */
export async function doctor(options: { config?: string; secrets: boolean }): Promise<boolean> {
  const config = wranglerConfig(options.config);
  const toml = readWranglerToml(config);
  console.log(`· ${describeShards(toml)}`);
  const findings = [...checkConfig(config, toml), ...checkDevVars(config)];
  if (options.secrets) findings.push(...(await checkDeployedSecrets(config)));
  for (const finding of findings) console.log(`${finding.level === "error" ? "✗" : "!"} ${finding.message}`);
  const errors = findings.filter((f) => f.level === "error").length;
  if (!options.secrets) {
    console.log(`· a deploy also needs the secrets ${DEPLOY_SECRETS.map((s) => s.name).join(" and ")} (\`npx wrangler secret put <NAME>\`); \`npx stepflare doctor --secrets\` checks the deployed Worker has them`);
  }
  console.log(errors === 0 ? `✓ ${path.basename(config)} has everything Stepflare needs${findings.length > 0 ? ` (${findings.length} warning${findings.length === 1 ? "" : "s"})` : ""}` : `${errors} problem${errors === 1 ? "" : "s"} to fix`);
  return errors === 0;
}
