import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

// The short version of `npm run chaos` (chaos/run.mjs): kill -9 `wrangler dev` three times while
// 40 runs of steps, sleeps, retries, sendEvent chains, fan-out, waits for a reply, cancelOn and
// concurrency are in flight (some sent and invoked through the service binding), with 10 runs of an
// app on the `inngest` SDK served from the runner (a sleep and parallel steps, one kill aimed at its
// steps), and once more at a minute boundary, restart it on the same state each time, and check that
// nothing accepted was lost, no finished step ran twice (a remote step again only after a kill cut it),
// and the cron due every minute ran once for each minute, the one across the kill included.
it("loses nothing and runs no finished step or scheduled minute twice across kill -9 restarts (npm run chaos --short)", async () => {
  const script = path.resolve(import.meta.dirname, "../../chaos/run.mjs");
  const { stdout } = await promisify(execFile)(process.execPath, [script, "--short"], { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }).catch(
    (err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`chaos run failed: ${err.message}\n${(err.stdout ?? "").slice(-4000)}\n${(err.stderr ?? "").slice(-2000)}`);
    },
  );
  const lines = stdout.trim().split("\n");
  const summary = lines.at(-1) ?? "";
  const cron = lines.at(-2) ?? "";
  const remote = lines.at(-3) ?? "";
  console.log(`${remote}\n${cron}\n${summary}`);
  expect(summary).toMatch(/^chaos: runs=\d+ crashes=\d+ lost=0 duplicated=0$/);
  const crashes = Number(/crashes=(\d+)/.exec(summary)?.[1]);
  expect(crashes).toBeGreaterThanOrEqual(4);
  expect(cron).toMatch(/^chaos cron: minutes=[1-9]\d* .* lost=0 duplicated=0$/);
  expect(cron).toMatch(/kills at a minute: \d+(\.\d)? (s before|ms after) \d\d:\d\d:00/);
  expect(remote).toMatch(/^chaos remote: (\d+)\/\1 runs completed, each step once .* lost=0 duplicated=0$/);
}, 330_000);
