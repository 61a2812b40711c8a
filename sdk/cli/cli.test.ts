import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { checkConfig, describeShards } from "./doctor.ts";
import { wranglerToml } from "./init.ts";
import { migrate } from "./migrate.ts";
import { shardDatabases, shardsUsed } from "./shards.ts";
import { parseToml, readWranglerToml } from "./toml.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");

describe("stepflare doctor", () => {
  it("finds everything the engine needs in the repository's wrangler.toml (only its placeholder database id stands out)", () => {
    const config = path.join(ROOT, "wrangler.toml");
    const errors = checkConfig(config, readWranglerToml(config)).filter((f) => f.level === "error");
    expect(errors.map((f) => f.message)).toEqual([expect.stringContaining("database_id is a placeholder")]);
  });

  it("finds everything in the generated wrangler.toml but the database id, and names each missing binding, tag and cron", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "stepflare-doctor-"));
    try {
      const config = path.join(dir, "wrangler.toml");
      const generated = wranglerToml("my-app").replace('migrations_dir = "node_modules/stepflare/migrations"', `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`);
      writeFileSync(config, generated);
      expect(checkConfig(config, parseToml(generated)).filter((f) => f.level === "error").map((f) => f.message)).toEqual([expect.stringContaining("database_id is a placeholder")]);

      const broken = generated
        .replace('name = "FLOWS"\nclass_name = "FlowObject"', 'name = "FLOW"\nclass_name = "FlowObject"')
        .replace('tag = "v2"\nnew_sqlite_classes = ["FlowObject"]', 'tag = "v2"\nnew_classes = ["FlowObject"]')
        .replace('crons = ["* * * * *"]', "crons = []")
        .replace("[observability]", '[vars]\nSTEPFLARE_DEV = "1"\n\n[observability]');
      writeFileSync(config, broken);
      const messages = checkConfig(config, parseToml(broken)).map((f) => f.message);
      expect(messages).toEqual(
        expect.arrayContaining([
          expect.stringContaining("no Durable Object bound as FLOWS"),
          expect.stringContaining("FlowObject is created in new_classes"),
          expect.stringContaining("no every-minute cron"),
          expect.stringContaining("[vars] sets STEPFLARE_DEV"),
        ]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the wrangler.toml reader", () => {
  it("reads tables, arrays of tables, inline and multi-line arrays, and comments", () => {
    const toml = parseToml(`name = "x" # a comment\nflags = [\n  "a", # one\n  "b",\n]\n[vars]\nA = 'lit#eral'\n[[q.producers]]\nbinding = "E"\nn = 1_000\n[[q.producers]]\nbinding = "F"\nok = true\nt = { a = "1", b = [2] }\n`);
    expect(toml).toEqual({ name: "x", flags: ["a", "b"], vars: { A: "lit#eral" }, q: { producers: [{ binding: "E", n: 1000 }, { binding: "F", ok: true, t: { a: "1", b: [2] } }] } });
  });
});

/** The generated wrangler.toml with real-looking database ids, the repository's migrations, and `more` D1 entries after DB's. */
function shardedToml(more: string): string {
  return wranglerToml("my-app")
    .replace('migrations_dir = "node_modules/stepflare/migrations"', `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`)
    .replace('database_id = "00000000-0000-0000-0000-000000000000"', 'database_id = "11111111-1111-4111-8111-111111111111"')
    .replace("[[queues.producers]]", `${more}\n[[queues.producers]]`);
}

const DB_1 = (fields: string) => `[[d1_databases]]\nbinding = "DB_1"\ndatabase_name = "my-app-1"\n${fields}\n`;
const MIGRATIONS_DIR = `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`;

describe("D1 shards in wrangler.toml", () => {
  it("are DB and DB_<n>, by number; the Worker uses them up to the first missing number", () => {
    const toml = parseToml(`[[d1_databases]]\nbinding = "DB_2"\n[[d1_databases]]\nbinding = "OTHER"\n[[d1_databases]]\nbinding = "DB"\n[[d1_databases]]\nbinding = "DB_1"\n[[d1_databases]]\nbinding = "DB_4"\n`);
    expect(shardDatabases(toml).map((shard) => shard.binding)).toEqual(["DB", "DB_1", "DB_2", "DB_4"]);
    expect(shardsUsed(shardDatabases(toml)).map((shard) => shard.binding)).toEqual(["DB", "DB_1", "DB_2"]);
  });

  it("pass the doctor with DB and DB_1, each its own database with the package's migrations, and are listed", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "stepflare-shards-"));
    try {
      const config = path.join(dir, "wrangler.toml");
      const write = (source: string) => {
        writeFileSync(config, source);
        return parseToml(source);
      };

      const good = write(shardedToml(DB_1(`database_id = "22222222-2222-4222-8222-222222222222"\n${MIGRATIONS_DIR}`)));
      expect(checkConfig(config, good).filter((f) => f.level === "error")).toEqual([]);
      expect(describeShards(good)).toBe("D1 shards: DB (my-app), DB_1 (my-app-1): 2 databases");
      expect(describeShards(parseToml(wranglerToml("my-app")))).toContain("D1 shards: DB alone");

      const errors = (toml: ReturnType<typeof parseToml>) => checkConfig(config, toml).filter((f) => f.level === "error").map((f) => f.message);
      expect(errors(write(shardedToml(DB_1('database_id = "22222222-2222-4222-8222-222222222222"'))))).toEqual([expect.stringContaining("the DB_1 database's migrations_dir is not set")]);
      expect(errors(write(shardedToml(DB_1(`database_id = "11111111-1111-4111-8111-111111111111"\n${MIGRATIONS_DIR}`))))).toEqual([expect.stringContaining("DB_1 has the same database_id as DB")]);
      const gap = shardedToml(DB_1(`database_id = "22222222-2222-4222-8222-222222222222"\n${MIGRATIONS_DIR}`).replace('"DB_1"', '"DB_2"'));
      expect(errors(write(gap))).toEqual([expect.stringContaining("DB_2 is bound but DB_1 is not")]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("all get the migrations from `stepflare migrate`", { timeout: 120_000 }, async () => {
    // Inside the repository (under the ignored .wrangler/), so the project's wrangler is found above it.
    mkdirSync(path.join(ROOT, ".wrangler", "tmp"), { recursive: true });
    const dir = mkdtempSync(path.join(ROOT, ".wrangler", "tmp", "cli-migrate-"));
    try {
      const config = path.join(dir, "wrangler.toml");
      writeFileSync(config, shardedToml(DB_1(`database_id = "22222222-2222-4222-8222-222222222222"\n${MIGRATIONS_DIR}`)));
      const persistTo = path.join(dir, "state");
      await migrate({ remote: false, config, persistTo });

      const expected = readdirSync(path.join(ROOT, "migrations")).filter((file) => file.endsWith(".sql")).sort();
      for (const binding of ["DB", "DB_1"]) {
        const { stdout } = await promisify(execFile)(
          path.join(ROOT, "node_modules", ".bin", "wrangler"),
          ["d1", "execute", binding, "--local", "--persist-to", persistTo, "--config", config, "--json", "--command", "SELECT name FROM d1_migrations ORDER BY id"],
          { cwd: dir, timeout: 60_000 },
        );
        const [result] = JSON.parse(stdout) as { results: { name: string }[] }[];
        expect(result!.results.map((row) => row.name), binding).toEqual(expected);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
