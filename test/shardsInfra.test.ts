import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { checkShardMigrations, LATEST_MIGRATION, layoutCounts, recordLayout, shardsOf } from "../worker/db/shards.ts";
import { StepflareError } from "../worker/platform/errors.ts";
import { request } from "./helpers.ts";

// The workers-shards project (vitest.config.ts): the Worker with three D1 databases, DB, DB_1 and DB_2, each
// migrated by test/setup.ts. What the shards stand on: their list, the layouts recorded, the migrations check.

describe("three D1 shards bound", () => {
  it("are DB, DB_1 and DB_2, in that order", () => {
    expect(shardsOf(env)).toEqual([env.DB, env.DB_1, env.DB_2]);
    expect(new Set(shardsOf(env)).size).toBe(3);
  });

  it("record their layout as one row on DB alone, and read it back current first", async () => {
    await recordLayout(env);
    await recordLayout(env);
    const onDb = await env.DB.prepare("SELECT count FROM shard_layouts").all<{ count: number }>();
    expect(onDb.results).toEqual([{ count: 3 }]);
    for (const shard of [env.DB_1!, env.DB_2!]) {
      expect(await shard.prepare("SELECT count(*) AS n FROM shard_layouts").first<{ n: number }>()).toEqual({ n: 0 });
    }
    expect(await layoutCounts(env)).toEqual([3, 1]);
  });
});

describe("the shards' migrations check", () => {
  it("refuses a shard without the newest migration, naming it, over the HTTP API too, and passes once it has it", async () => {
    const behind = env.DB_2!;
    const row = await behind.prepare("SELECT id, name, applied_at FROM d1_migrations WHERE name = ?1").bind(LATEST_MIGRATION).first<{ id: number; name: string; applied_at: string }>();
    expect(row).not.toBeNull();
    await behind.prepare("DELETE FROM d1_migrations WHERE name = ?1").bind(LATEST_MIGRATION).run();
    try {
      // The check's answer is kept per isolate and per shard count: asking with two shards first makes the
      // three-shard check below run afresh, whatever this isolate asked before.
      await expect(checkShardMigrations({ ...env, DB_2: undefined })).resolves.toBeUndefined();

      const refusal = await checkShardMigrations(env).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refusal).toBeInstanceOf(StepflareError);
      expect(refusal).toMatchObject({ code: "config.invalid" });
      expect((refusal as StepflareError).message).toContain(`DB_2 lacks migration ${LATEST_MIGRATION}`);
      expect((refusal as StepflareError).message).not.toContain("DB_1");

      const res = await request("/v1/functions");
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: string };
      expect(body.error).toContain(`DB_2 lacks migration ${LATEST_MIGRATION}`);
    } finally {
      await behind.prepare("INSERT INTO d1_migrations (id, name, applied_at) VALUES (?1, ?2, ?3)").bind(row!.id, row!.name, row!.applied_at).run();
    }

    // A refusal is not kept: the next request checks again, and finds every shard up to date.
    await expect(checkShardMigrations(env)).resolves.toBeUndefined();
    const res = await request("/v1/functions");
    expect(res.status).toBe(200);
  });
});
