import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { shardsOf } from "../worker/db/shards.ts";

// Every shard bound (DB, and DB_1, DB_2, … in the workers-shards project) gets every migration, as a
// deployment's do. Idempotent: migrations already applied are skipped.
await Promise.all(shardsOf(env).map((shard) => applyD1Migrations(shard, env.TEST_MIGRATIONS)));
// Side effects of the test functions (test/worker.ts), counted by tests.
await env.DB.prepare("CREATE TABLE IF NOT EXISTS test_effects (key TEXT NOT NULL)").run();
