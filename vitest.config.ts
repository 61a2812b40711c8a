import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { outboundFetch } from "./test/outbound.ts";

const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));

/** Tests of the source tree itself (its floor plan, the docs' links), read from disk in Node. */
const NODE_TESTS = ["test/floorPlan.test.ts", "test/docsLinks.test.ts"];

/** The workerd test files that switch D1 or the Queue off. */
const FAULT_TESTS = ["test/faults.test.ts", "test/outage.test.ts", "test/crons.test.ts"];

/** The workerd test files run with the optional R2 bucket for large values bound (the others run without it). */
const R2_TESTS = ["test/largeValues.test.ts"];

/**
 * The workerd test files run with three D1 shards (DB, DB_1, DB_2: worker/db/shards.ts); the others run with DB
 * alone. A listed file that does not exist yet matches nothing.
 */
const SHARD_TESTS = ["test/shardsInfra.test.ts", "test/shards.test.ts"];

/**
 * The Workers pool with the repo's Worker, as a user's entry of the documented shape; `r2` binds the VALUES bucket,
 * `shards` binds that many more D1 databases beside wrangler.toml's DB, as DB_1, DB_2, ….
 */
function workerdPool({ r2 = false, shards = 0 } = {}) {
  const extraShards = Array.from({ length: shards }, (_, i) => `DB_${i + 1}`);
  return cloudflareTest({
    // A user's entry of the documented shape, with functions that count their side effects.
    main: "./test/worker.ts",
    wrangler: { configPath: "./wrangler.toml" },
    // Dev mode, as `npm run dev` runs it (wrangler.toml leaves it off): the tests drive an open API,
    // and test/auth.test.ts calls the Worker with an env that turns it off.
    // Outbound requests pass through test/outbound.ts, which serves step.fetch's tests an echo host.
    // Extra D1 databases are merged with the wrangler config's DB, each a database of its own.
    miniflare: {
      bindings: { TEST_MIGRATIONS: migrations, STEPFLARE_DEV: "1" },
      ...(r2 ? { r2Buckets: ["VALUES"] } : {}),
      ...(extraShards.length > 0 ? { d1Databases: extraShards } : {}),
      outboundService: outboundFetch,
    },
    // `export * from "../worker/index.ts"` hides the entrypoint from the pool's static look at
    // the entry's exports: name it, so tests reach it as `exports.StepflareService`.
    additionalExports: { StepflareService: "WorkerEntrypoint" },
  });
}

export default defineConfig({
  test: {
    // The JSON report is what .ci/run counts passed and failed tests from.
    reporters: ["default", "json"],
    outputFile: { json: "test-results/vitest.json" },
    projects: [
      {
        // Pure modules (the SDK's driver, durations, errors, the bench's capacity model) in Node.
        test: { name: "unit", include: ["sdk/**/*.test.ts", "worker/**/*.test.ts", "bench/**/*.test.ts", "chaos/**/*.test.ts", ...NODE_TESTS], environment: "node", sequence: { groupOrder: 0 } },
      },
      {
        // The Worker under workerd with its real D1, Queue and Durable Object bindings.
        plugins: [workerdPool()],
        test: { name: "workers", include: ["test/*.test.ts"], exclude: [...FAULT_TESTS, ...NODE_TESTS, ...R2_TESTS, ...SHARD_TESTS], setupFiles: ["./test/setup.ts"], testTimeout: 30_000, sequence: { groupOrder: 0 } },
      },
      {
        // The same Worker with an R2 bucket bound as VALUES: large step outputs and events (worker/platform/largeValues.ts).
        plugins: [workerdPool({ r2: true })],
        test: { name: "workers-r2", include: R2_TESTS, setupFiles: ["./test/setup.ts"], testTimeout: 30_000, sequence: { groupOrder: 0 } },
      },
      {
        // The same Worker with D1 spread over three shards (DB, DB_1, DB_2): docs/shards.md.
        plugins: [workerdPool({ shards: 2 })],
        test: { name: "workers-shards", include: SHARD_TESTS, setupFiles: ["./test/setup.ts"], testTimeout: 30_000, sequence: { groupOrder: 0 } },
      },
      {
        // The tests that take D1 or the Queue down (worker/platform/faults.ts): the switch is one isolate's, so
        // they run after the others, in a runtime of their own, never beside a test that needs them up.
        plugins: [workerdPool()],
        test: { name: "workers-faults", include: FAULT_TESTS, setupFiles: ["./test/setup.ts"], testTimeout: 30_000, sequence: { groupOrder: 1 } },
      },
      {
        // `wrangler dev` as a user runs it, driven over HTTP.
        // After the others: the crash test kills and restarts wrangler dev under load, and on 2 cores it would
        // starve the workerd tests of the projects beside it.
        test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], environment: "node", testTimeout: 120_000, hookTimeout: 120_000, sequence: { groupOrder: 2 } },
      },
    ],
  },
});
