import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Idempotent: migrations already applied are skipped.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// Side effects of the test functions (test/worker.ts), counted by tests.
await env.DB.prepare("CREATE TABLE IF NOT EXISTS test_effects (key TEXT NOT NULL)").run();
