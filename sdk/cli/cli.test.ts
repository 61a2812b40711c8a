import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkConfig } from "./doctor.ts";
import { wranglerToml } from "./init.ts";
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
