/**
 * Stuck runs under `wrangler dev`, found by the tick and repaired from the Health page in headless
 * Chromium (issue 24, items 1 and 2). One of each kind, made on purpose: a function removed between
 * two starts of the dev server (test/e2e/stuck/before.toml, then after.toml, on one `--persist-to`
 * directory), an alarm deleted through the dev-only fault switch, a step that keeps failing. The
 * thresholds are set to 1 s (STEPFLARE_STUCK_*_SECONDS) so that no test waits an hour.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPage } from "./browser.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const WAIT_MS = 90_000;
const THRESHOLDS = { STEPFLARE_STUCK_OVERDUE_SECONDS: "1", STEPFLARE_STUCK_RETRYING_SECONDS: "1" };

let persistDir = "";
let dev: DevServer | undefined;
let browser: Browser;

interface RunJson {
  run_id: string;
  function_id: string;
  status: string;
  output: unknown;
  stuck_reason?: string;
  steps: { name: string; status: string }[];
  repairs?: { action: string; detail?: string }[];
}

async function api<T>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${dev!.baseUrl}${urlPath}`, { method, headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json().catch(() => null)) as T };
}

/** The run the event started, once it has stored the step `stepName`. */
async function runAt(eventId: string, stepName: string): Promise<RunJson> {
  return waitFor(`the run of ${eventId} at step ${stepName}`, WAIT_MS, dev!, async () => {
    const runs = await api<{ data: RunJson[] }>("GET", `/v1/events/${encodeURIComponent(eventId)}/runs`);
    const runId = runs.body?.data?.[0]?.run_id;
    if (!runId) return undefined;
    const run = (await api<{ data: RunJson }>("GET", `/v1/runs/${runId}`)).body.data;
    return run.steps.some((step) => step.name === stepName) ? run : undefined;
  });
}

async function send(name: string, key: string): Promise<string> {
  const { status, body } = await api<{ ids: string[] }>("POST", "/e/dev", { name, data: { key } });
  expect(status).toBe(200);
  return body.ids[0]!;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  persistDir = await mkdtemp(path.join(os.tmpdir(), "stepflare-stuck-"));
  browser = await chromium.launch({ executablePath: CHROMIUM });
});

afterAll(async () => {
  await browser?.close();
  await dev?.stop();
  if (persistDir) await rm(persistDir, { recursive: true, force: true });
});

describe("stuck runs under wrangler dev", () => {
  it("finds a run of each kind, shows them on the Health page, repairs them from there, and they complete", async () => {
    // The first deploy: a run of nap-then-finish sleeps when the server stops.
    dev = await startDevServer(["test/e2e/stuck/before.toml"], "/v1/functions", { persistDir, vars: THRESHOLDS });
    const renamedRun = await runAt(await send("stuck/nap", "renamed"), "nap");
    await dev.stop();

    // The second deploy renamed the function: the run wakes and waits for it.
    dev = await startDevServer(["test/e2e/stuck/after.toml"], "/v1/functions", { persistDir, vars: THRESHOLDS, migrations: false });
    const alarmRun = await runAt(await send("stuck/alarm", "alarm"), "nap");
    expect((await api<{ data: { dropped: boolean } }>("POST", `/v1/dev/runs/${alarmRun.run_id}/drop-alarm`)).body.data.dropped).toBe(true);
    const flakyRun = await runAt(await send("stuck/flaky", "flaky"), "flaky");

    // The tick (the wrangler.toml cron trigger, fired on request) finds all three; a run is checked once it is 30 s old.
    const expected = { [renamedRun.run_id]: "function_missing", [alarmRun.run_id]: "no_alarm", [flakyRun.run_id]: "retrying" };
    await waitFor("the tick to find the three runs stuck", WAIT_MS, dev, async () => {
      await fetch(`${dev!.baseUrl}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("* * * * *")}`, { signal: AbortSignal.timeout(15_000) });
      const listed = await api<{ data: RunJson[] }>("GET", "/v1/runs?stuck=any");
      const found = Object.fromEntries(listed.body.data.map((run) => [run.run_id, run.stuck_reason]));
      return Object.entries(expected).every(([runId, reason]) => found[runId] === reason) ? true : undefined;
    });
    const health = await api<{ data: { stuck: Record<string, number>; total_stuck: number } }>("GET", "/v1/health");
    // (The Scheduler's own tick may check a run again meanwhile: a retry a moment late is overdue then, so no exact counts.)
    for (const reason of Object.values(expected)) expect(health.body.data.stuck[reason]).toBeGreaterThanOrEqual(1);
    // Each sent stepflare/run.stuck once for its reason, with its run id.
    const events = await api<{ data: { name: string; data: { run_id: string; reason: string } }[] }>("GET", "/v1/events?name=stepflare/run.stuck");
    for (const [runId, reason] of Object.entries(expected)) expect(events.body.data.filter((event) => event.data.run_id === runId && event.data.reason === reason)).toHaveLength(1);

    // The Health page and a stuck run's page fit a phone's width.
    for (const urlPath of ["/health", `/runs/${renamedRun.run_id}`]) {
      const phone = await openPage(browser, `${dev.baseUrl}${urlPath}`, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
      expect(await phone.page.evaluate<number>("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"), urlPath).toBeLessThanOrEqual(390);
      expect(phone.problems).toEqual([]);
      await phone.page.context().close();
    }

    const { page, problems } = await openPage(browser, `${dev.baseUrl}/health`);
    for (const [runId, reason] of Object.entries(expected)) await page.locator(`tr[data-run-id="${runId}"][data-stuck-reason="${reason}"]`).waitFor();
    expect(await page.locator(`tr[data-run-id="${renamedRun.run_id}"] .stuck-reason`).textContent()).toBe("Function not registered");

    // Re-point the renamed function's run to its new id.
    await page.locator(`tr[data-run-id="${renamedRun.run_id}"] input[type=checkbox]`).check();
    await page.locator("select[data-repoint-target]").selectOption("nap-then-finish-v2");
    await page.locator("button[data-repair=repoint]").click();
    await page.locator(".flash.ok", { hasText: "repoint done" }).waitFor();

    // Fix the failing step's cause, then wake both others at once.
    expect((await fetch(`${dev.baseUrl}/test/fix`, { method: "POST" })).status).toBe(200);
    await page.locator(`tr[data-run-id="${alarmRun.run_id}"] input[type=checkbox]`).check();
    await page.locator(`tr[data-run-id="${flakyRun.run_id}"] input[type=checkbox]`).check();
    await page.locator("button[data-repair=wake]").click();
    await page.locator(".flash.ok", { hasText: "2 runs: wake done" }).waitFor();

    const completed = await waitFor("the three runs to complete", WAIT_MS, dev, async () => {
      const runs = await Promise.all(Object.keys(expected).map(async (runId) => (await api<{ data: RunJson }>("GET", `/v1/runs/${runId}`)).body.data));
      return runs.every((run) => run.status === "Completed") ? runs : undefined;
    });
    expect(completed[0]).toMatchObject({ function_id: "nap-then-finish-v2", output: { before: "before:renamed", after: "after" } });
    expect(completed[0]!.repairs?.map((repair) => repair.action)).toEqual(["repoint", "wake"]);
    expect(completed[1]!.repairs?.map((repair) => repair.action)).toEqual(["wake"]);
    expect(completed[2]).toMatchObject({ output: "fixed", repairs: [{ action: "wake" }] });

    // The run's page shows what was done to it.
    const run = await openPage(browser, `${dev.baseUrl}/runs/${renamedRun.run_id}`);
    expect(await run.page.locator("#repairs").textContent()).toContain("nap-then-finish → nap-then-finish-v2");
    expect([...problems, ...run.problems]).toEqual([]);
  });
});
