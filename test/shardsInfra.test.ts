import { env } from "cloudflare:workers";
import { ulid } from "ulidx";
import { describe, expect, it } from "vitest";
import { checkShardMigrations, forgetLayouts, LATEST_MIGRATION, layoutCounts, recordLayout, shardFor, shardsOf, ShardWrites } from "../worker/db/shards.ts";
import { deleteOldEventsStatement } from "../worker/db/events.ts";
import { StepflareError } from "../worker/platform/errors.ts";
import { forgetRunIdScheme, runIdScheme } from "../worker/db/runIdScheme.ts";
import { runIdFor } from "../worker/platform/runId.ts";
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
    // DB holds nothing from a time it was alone: keys are not looked for there as under one shard.
    expect(await layoutCounts(env)).toEqual([3]);
  });

  it("look for keys where DB alone put them while DB holds a row from that time, and no longer once it is gone", async () => {
    const firstSeen = (await env.DB.prepare("SELECT first_seen FROM shard_layouts WHERE count = 3").first<{ first_seen: number }>())!.first_seen;
    const id = `alone-${crypto.randomUUID()}`;
    await env.DB.prepare("INSERT INTO events (id, name, data, ts, received_at) VALUES (?1, 'test/alone', '{}', ?2, ?2)").bind(id, firstSeen - 1000).run();
    forgetLayouts();
    expect(await layoutCounts(env)).toEqual([3, 1]);
    await env.DB.prepare("DELETE FROM events WHERE id = ?1").bind(id).run();
    forgetLayouts();
    expect(await layoutCounts(env)).toEqual([3]);
  });
});

describe("ShardWrites", () => {
  it("writes each shard's statements to that shard, in the order they were added", async () => {
    const shards = shardsOf(env);
    await Promise.all(shards.map((shard) => shard.prepare("CREATE TABLE IF NOT EXISTS shard_writes_probe (batch TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL)").run()));
    // Fixed keys, so their shards are known (each gets some); this test's own batch id sets its rows apart.
    const batch = crypto.randomUUID();
    const keys = Array.from({ length: 30 }, (_, i) => `probe-${i}`);
    const writes = new ShardWrites();
    keys.forEach((key, seq) => {
      const shard = shardFor(env, key);
      writes.add(shard, shard.prepare("INSERT INTO shard_writes_probe (batch, key, seq) VALUES (?1, ?2, ?3)").bind(batch, key, seq));
    });
    expect(writes.size).toBe(30);
    await writes.write(env);

    for (const shard of shards) {
      const { results } = await shard.prepare("SELECT key, seq FROM shard_writes_probe WHERE batch = ?1 ORDER BY rowid").bind(batch).all<{ key: string; seq: number }>();
      const wanted = keys.flatMap((key, seq) => (shardFor(env, key) === shard ? [{ key, seq }] : []));
      expect(wanted.length).toBeGreaterThan(0);
      expect(results).toEqual(wanted);
    }
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

// On DB_2, a database whose floor for reads by id prefix no other test moves (migration 0017 set it a day
// before it ran): what retention reads of the event log, with a sender's ids that sort below the ULIDs.
describe("the event log's reads by id prefix", () => {
  it("never reads a sender's ids that sort below the ULIDs of its floor (retention here)", async () => {
    const db = env.DB_2!;
    const since = (await db.prepare("SELECT ordered_since FROM sweep_cursor").first<{ ordered_since: number }>())!.ordered_since;
    expect(since).toBeGreaterThan(Date.now() - 3 * 86_400_000);
    const at = since + 60_000;
    const padded = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(12, "0")}-${crypto.randomUUID()}`);
    const ordered = [ulid(at), ulid(at + 1), ulid(at + 2)];
    const insert = db.prepare("INSERT INTO events (id, name, data, ts, received_at, id_ordered) VALUES (?1, 'prefix/none', '{}', ?2, ?2, ?3)");
    await db.batch([...padded.map((id) => insert.bind(id, at + 10_000, null)), ...ordered.map((id, i) => insert.bind(id, at + i, 1))]);
    try {
      const [pruned] = await db.batch([deleteOldEventsStatement(db, at + 5_000, 500)]);
      // The ordered rows before the cutoff go; the sender's, received after it, stay, and their ids are not read.
      expect(pruned!.meta.rows_read).toBeLessThan(100);
      const left = await db.prepare("SELECT id FROM events WHERE name = 'prefix/none'").all<{ id: string }>();
      expect(left.results.map((row) => row.id).sort()).toEqual([...padded].sort());
    } finally {
      await db.prepare("DELETE FROM events WHERE name = 'prefix/none'").run();
    }
  });
});

// Migration 0020's cutover: a deployment whose database held runs when it was migrated derives the ids the
// code before derived (32 hex characters) for runs until an hour later, so that code of before and of after,
// both running during the upgrade, start the same run under the same id. Shown on DB_2 given as a
// deployment's DB (the scheme is read per database): no other test derives ids from it.
describe("the run id scheme", () => {
  it("takes ULIDs at once on a database migrated empty, and the ids of before until the cutover on one that held runs", async () => {
    expect(await env.DB.prepare("SELECT ulid_runs_since AS at FROM sweep_cursor").first<{ at: number }>()).toEqual({ at: 0 });
    const db = env.DB_2!;
    const deployment = { ...env, DB: db };
    const cutover = Date.now() + 3_600_000;
    await db.prepare("UPDATE sweep_cursor SET ulid_runs_since = ?1").bind(cutover).run();
    forgetRunIdScheme(db);
    try {
      const idFor = await runIdScheme(deployment);
      expect(idFor("fn", "event-1", cutover - 1)).toBe(runIdFor("fn", "event-1", cutover - 1, Infinity));
      expect(idFor("fn", "event-1", cutover - 1)).toMatch(/^[0-9a-f]{32}$/);
      expect(idFor("fn", "event-1", cutover)).toBe(runIdFor("fn", "event-1", cutover));
      // Read once: the scheme does not change under the isolate that read it.
      await db.prepare("UPDATE sweep_cursor SET ulid_runs_since = 0").run();
      expect((await runIdScheme(deployment))("fn", "event-1", cutover - 1)).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await db.prepare("UPDATE sweep_cursor SET ulid_runs_since = 0").run();
      forgetRunIdScheme(db);
    }
    expect((await runIdScheme(deployment))("fn", "event-1", cutover - 1)).toBe(runIdFor("fn", "event-1", cutover - 1));
  });
});
