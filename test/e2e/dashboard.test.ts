/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core) against
 * `wrangler dev` of the repo's examples: sending an event from the Events page and watching its run
 * appear and complete, a run's timeline, cancel, rerun, invoke and pause from the pages; payloads
 * written by strangers shown as text; the CSP; a phone's width.
 *
 * Every page is also screenshotted: with `STEPFLARE_SCREENSHOTS=1` (`npm run screenshots`) into docs/dashboard-*.png.
 * `STEPFLARE_E2E_PORT` picks the dev server's port (default: a free one).
 */
import { existsSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type BrowserContextOptions, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPage as openPageAt } from "./browser.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const HOSTILE = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`;
const RUN_TIMEOUT_MS = 30_000;
// `npm run screenshots` (STEPFLARE_SCREENSHOTS=1) writes them to docs/; a plain test run to a temporary directory.
const DOCS = process.env.STEPFLARE_SCREENSHOTS ? path.resolve(import.meta.dirname, "../../docs") : path.join(os.tmpdir(), "stepflare-screenshots");

let dev: DevServer;
let browser: Browser;
let baseUrl = "";

interface RunSummary {
  run_id: string;
  function_id: string;
  status: string;
}

async function sendEvents(events: object[]): Promise<string[]> {
  const res = await fetch(`${baseUrl}/v1/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(events) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { ids: string[] }).ids;
}

/** The run of `functionId` the event started, once it has one (and, with `status`, once it has that status). */
function runOf(eventId: string, functionId: string, status?: string): Promise<RunSummary> {
  return waitFor(`a ${status ?? ""} run of ${functionId} for event ${eventId}`, RUN_TIMEOUT_MS, dev, async () => {
    const res = await fetch(`${baseUrl}/v1/events/${encodeURIComponent(eventId)}/runs`);
    if (res.status !== 200) return undefined;
    const run = ((await res.json()) as { data: RunSummary[] }).data.find((r) => r.function_id === functionId);
    return run && (!status || run.status === status) ? run : undefined;
  });
}

async function runStatus(runId: string): Promise<string> {
  const res = await fetch(`${baseUrl}/v1/runs/${runId}`);
  return ((await res.json()) as { data: RunSummary }).data.status;
}

/** A dashboard page in a fresh context (see browser.ts). */
function openPage(urlPath: string, options: BrowserContextOptions = {}): Promise<{ page: Page; problems: string[] }> {
  return openPageAt(browser, `${baseUrl}${urlPath}`, options);
}

const STATUS = (status: string) => `h1 .badge.status-${status.toLowerCase()}`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const port = process.env.STEPFLARE_E2E_PORT ? Number(process.env.STEPFLARE_E2E_PORT) : undefined;
  [dev, browser] = await Promise.all([startDevServer(["wrangler.toml"], "/v1/functions", { port }), chromium.launch({ executablePath: CHROMIUM })]);
  baseUrl = dev.baseUrl;
});

afterAll(async () => {
  await browser?.close();
  await dev?.stop();
});

describe("dashboard", () => {
  it("sends an event from the Events page; its run appears live on the Runs page, completes, and shows its timeline", async () => {
    const runs = await openPage("/runs");
    const events = await openPage("/events");
    const editor = events.page.locator("textarea[data-json=event]");
    const send = events.page.locator("form[data-form=send-event] button[type=submit]");

    // The editor checks as it is typed: not JSON, then an event without a name, refused before sending.
    await editor.fill('{"name": "demo/hello", "data": ');
    await events.page.locator("[data-json-hint].bad").waitFor();
    expect(await send.isDisabled()).toBe(true);
    await editor.fill('{"data": {}}');
    expect(await events.page.locator("[data-json-hint]").textContent()).toContain('needs a "name"');
    expect(await send.isDisabled()).toBe(true);

    await editor.fill('{"name": "demo/hello", "data": {"name": "Grace"}}');
    expect(await events.page.locator("[data-json-hint]").textContent()).toBe("1 event, ready to send");
    await send.click();
    const sent = events.page.locator("#send-flash a");
    await sent.waitFor();
    const eventId = (await sent.textContent())!;
    // The new event is in the log below the form.
    await events.page.locator(`#events-live tr[data-event-id="${eventId}"]`).waitFor();

    // The Runs page, opened before the event was sent, shows its run without a reload, until it completes.
    await runs.page.locator(`#runs-live tr[data-event-id="${eventId}"][data-status="Completed"]`).waitFor({ timeout: RUN_TIMEOUT_MS });
    await runs.page.locator(`#runs-live tr[data-event-id="${eventId}"] a[href^="/runs/"]`).click();
    await runs.page.locator(STATUS("Completed")).waitFor();
    const step = runs.page.locator('.timeline li[data-step-name="greet"]');
    expect(await step.getAttribute("data-step-status")).toBe("Completed");
    expect(await runs.page.locator("#run-output").textContent()).toContain("Hello, Grace!");
    expect(await runs.page.locator("#events").textContent()).toContain(eventId);
    expect([...runs.problems, ...events.problems]).toEqual([]);
  });

  it("cancels a sleeping run from its page", async () => {
    const [eventId] = await sendEvents([{ name: "tour/nap.requested", data: { sleepFor: "1h" } }]);
    const run = await runOf(eventId!, "tour-nap");
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("dialog", (dialog) => void dialog.accept());
    // The page follows the run through its stream (server-sent events), not by polling.
    const stream = page.waitForResponse((res) => res.url().endsWith(`/v1/runs/${run.run_id}/stream`));
    await page.goto(`${baseUrl}/runs/${run.run_id}`);
    expect((await stream).status()).toBe(200);
    // The page follows the run until its nap has begun, and says when it ends.
    await page.locator('.timeline li[data-step-name="nap"][data-step-status="Sleeping"]').waitFor({ timeout: RUN_TIMEOUT_MS });
    expect(await page.locator('li[data-step-name="nap"] .wake').textContent()).toMatch(/^Sleeps until .+ \(in (59 min|60 min|1 h)\)$/);

    await page.locator("button[data-action=cancel-run]").click();
    await page.locator(STATUS("Cancelled")).waitFor();
    expect(await page.locator("button[data-action=cancel-run]").count()).toBe(0);
    expect(await runStatus(run.run_id)).toBe("Cancelled");
    expect(problems).toEqual([]);
  });

  it("reruns a failed run, and re-runs it from a step, once the service it needs is back", async () => {
    const downUntil = Date.now() + 8_000;
    const [eventId] = await sendEvents([{ name: "tour/checkout.requested", data: { orderId: `o-${downUntil}`, downUntil } }]);
    const failed = await runOf(eventId!, "tour-checkout", "Failed");
    const { page, problems } = await openPage(`/runs/${failed.run_id}`);
    await page.locator(STATUS("Failed")).waitFor();
    // Every attempt of the failing step is on the timeline with its own error.
    const attempts = page.locator('li[data-step-name="charge"] .attempts li.failed');
    expect(await attempts.count()).toBe(3);
    expect(await attempts.first().textContent()).toContain("payment service unavailable");
    expect(await page.locator('li[data-step-name="charge"] svg rect.attempt-failed').count()).toBe(3);

    // The runs page finds it by its id, and by function and status.
    await page.goto(`${baseUrl}/runs?q=${failed.run_id}`);
    expect(await page.locator("#runs-live tr[data-run-id]").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-run-id")))).toEqual([failed.run_id]);
    await page.goto(`${baseUrl}/runs?function_id=tour-checkout&status=Failed`);
    await page.locator(`#runs-live tr[data-run-id="${failed.run_id}"]`).waitFor();
    const shown = await page.locator("#runs-live tr[data-run-id]").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-status")));
    expect(new Set(shown)).toEqual(new Set(["Failed"]));
    await page.goto(`${baseUrl}/runs/${failed.run_id}`);

    await waitFor("the payment service to be back", 15_000, dev, async () => (Date.now() > downUntil ? true : undefined));
    await page.locator("button[data-action=rerun]:not([data-from-step])").click();
    await page.waitForURL((url) => url.pathname.startsWith("/runs/") && !url.pathname.endsWith(failed.run_id));
    await page.locator(STATUS("Completed")).waitFor({ timeout: RUN_TIMEOUT_MS });
    const rerunId = page.url().split("/runs/")[1]!;
    expect(await runStatus(rerunId)).toBe("Completed");

    // From the failed run again: a new run from its "charge" step, reusing "load-order".
    await page.goto(`${baseUrl}/runs/${failed.run_id}`);
    await page.locator('li[data-step-name="charge"] button[data-action=rerun]').click();
    await page.waitForURL((url) => url.pathname.startsWith("/runs/") && !url.pathname.endsWith(failed.run_id) && !url.pathname.endsWith(rerunId));
    await page.locator(STATUS("Completed")).waitFor({ timeout: RUN_TIMEOUT_MS });
    expect(await page.locator('li[data-step-name="load-order"]').getAttribute("data-step-status")).toBe("Completed");
    expect(problems).toEqual([]);
  });

  it("invokes a function with a JSON payload, runs a cron function now, and pauses and resumes one, from the Functions page", async () => {
    const { page, problems } = await openPage("/");
    const card = page.locator("#fn-hello");
    await card.locator("summary").click();
    await card.locator("textarea[data-json=object]").fill('{"name": "Invoked"}');
    await card.locator("form[data-form=invoke] button[type=submit]").click();
    await page.waitForURL((url) => url.pathname.startsWith("/runs/"));
    await page.locator(STATUS("Completed")).waitFor({ timeout: RUN_TIMEOUT_MS });
    expect(await page.locator("#run-output").textContent()).toContain("Hello, Invoked!");

    // "Run now" on a cron function starts a run as its schedule would.
    await page.goto(`${baseUrl}/`);
    await page.locator("#fn-weekly-report button[data-action=trigger]").click();
    await page.waitForURL((url) => url.pathname.startsWith("/runs/"));
    await page.locator(STATUS("Completed")).waitFor({ timeout: RUN_TIMEOUT_MS });
    expect(await page.locator("#events").textContent()).toContain("inngest/scheduled.timer");

    await page.goto(`${baseUrl}/`);
    await page.locator("#fn-tour-nap button[data-action=pause]").click();
    await page.locator("#fn-tour-nap .badge.status-paused").waitFor();
    await page.locator("#fn-tour-nap button[data-action=resume]").click();
    await page.locator("#fn-tour-nap button[data-action=pause]").waitFor();
    expect(await page.locator("#fn-tour-nap .badge.status-paused").count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it("shows each function's estimated cost per day beside its counts on the Functions page", async () => {
    const [eventId] = await sendEvents([{ name: "demo/hello", data: { name: "Cost" } }]);
    await runOf(eventId!, "hello", "Completed");
    // The run's cost reaches the runs index with its end, which its object writes once it has ended.
    const costUsd = await waitFor("the cost of hello's runs", RUN_TIMEOUT_MS, dev, async () => {
      const res = await fetch(`${baseUrl}/v1/functions`);
      const hello = ((await res.json()) as { data: { id: string; stats: { cost_usd: number } }[] }).data.find((fn) => fn.id === "hello");
      return hello && hello.stats.cost_usd > 0 ? hello.stats.cost_usd : undefined;
    });
    const { page, problems } = await openPage("/");
    const lastDay = page.locator("#fn-hello section", { has: page.locator("h3", { hasText: "Last 24 hours" }) });
    await expect(lastDay.locator(".counts .badge.status-completed").count()).resolves.toBe(1);
    const cost = lastDay.locator("p.cost");
    expect((await cost.textContent())?.trim()).toMatch(/^est\. \$0\.0[0-9]+ \/ day$/);
    expect(Number(await cost.getAttribute("data-cost-usd"))).toBeGreaterThanOrEqual(costUsd);
    expect(await cost.getAttribute("title")).toContain("list prices");
    expect(problems).toEqual([]);
  });

  it("cancels the filtered runs in bulk from the Runs page", async () => {
    const ids = await sendEvents([1, 2].map((i) => ({ name: "tour/nap.requested", data: { sleepFor: "1h", i } })));
    const naps = await Promise.all(ids.map((id) => runOf(id, "tour-nap")));
    const { page, problems } = await openPage("/runs?function_id=tour-nap&range=15m");
    for (const run of naps) await page.locator(`#runs-live tr[data-run-id="${run.run_id}"]`).waitFor();
    await page.locator("button[data-action=bulk-cancel]").click();
    await page.locator("#bulk-flash.ok").waitFor();
    for (const run of naps) await page.locator(`#runs-live tr[data-run-id="${run.run_id}"][data-status="Cancelled"]`).waitFor({ timeout: RUN_TIMEOUT_MS });
    expect(problems).toEqual([]);
  });

  it("shows HTML and script in a payload as text on every page, and runs none of it", async () => {
    const [eventId] = await sendEvents([{ name: "demo/hello", data: { name: HOSTILE } }]);
    const run = await runOf(eventId!, "hello", "Completed");
    for (const urlPath of ["/events", `/events/${eventId}`, `/runs/${run.run_id}`, `/runs?q=${eventId}`]) {
      const { page, problems } = await openPage(urlPath);
      await page.waitForLoadState("networkidle");
      expect(await page.evaluate("window.__pwned")).toBeUndefined();
      // The only script is the dashboard's own; the payload's img is text, not an element.
      expect(await page.evaluate("[...document.scripts].map((s) => new URL(s.src).pathname)")).toEqual(["/assets/app.js"]);
      expect(await page.locator("img").count()).toBe(0);
      if (urlPath !== `/runs?q=${eventId}`) expect(await page.locator("main").textContent()).toContain("<script>window.__pwned=1</script>");
      expect(problems).toEqual([]);
      await page.context().close();
    }
    const { page } = await openPage(`/runs/${run.run_id}`);
    expect(JSON.parse((await page.locator("#run-output").textContent())!)).toEqual({ greeting: `Hello, ${HOSTILE}!` });
  });

  it("sends a strict Content-Security-Policy with every page and asset", async () => {
    for (const urlPath of ["/", "/runs", "/events", "/assets/app.css", "/assets/app.js", "/runs/00000000000000000000000000000000"]) {
      const res = await fetch(`${baseUrl}${urlPath}`);
      expect(res.headers.get("content-security-policy"), urlPath).toBe(CSP);
      expect(res.headers.get("x-content-type-options"), urlPath).toBe("nosniff");
    }
    // The stylesheet applied under that policy (no inline style was needed).
    const { page, problems } = await openPage("/");
    expect(await page.evaluate("getComputedStyle(document.querySelector('.brand')).fontWeight")).toBe("700");
    expect(problems).toEqual([]);
  });

  it("fits a phone's width on every page", async () => {
    const [eventId] = await sendEvents([{ name: "demo/hello", data: { name: "Phone" } }]);
    const run = await runOf(eventId!, "hello", "Completed");
    for (const urlPath of ["/", "/runs", `/runs/${run.run_id}`, "/events", `/events/${eventId}`]) {
      const { page } = await openPage(urlPath, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
      const width = await page.evaluate<number>("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)");
      expect(width, urlPath).toBeLessThanOrEqual(390);
      await page.context().close();
    }
  });

  it("takes a screenshot of each page (to docs/ with npm run screenshots)", async () => {
    await mkdir(DOCS, { recursive: true });
    const downUntil = Date.now() + 600_000;
    const [checkoutEvent, helloEvent, , napEvent] = await sendEvents([
      { name: "tour/checkout.requested", data: { orderId: "o-1042", downUntil } },
      { name: "demo/hello", data: { name: "Ada" } },
      { name: "shop/product.imported", data: { productId: "p-7", imageURLs: ["front.png", "back.png"] } },
      { name: "tour/nap.requested", data: { sleepFor: "2h" } },
    ]);
    const failed = await runOf(checkoutEvent!, "tour-checkout", "Failed");
    await runOf(helloEvent!, "hello", "Completed");
    const nap = await runOf(napEvent!, "tour-nap");
    const shots: [string, string, BrowserContextOptions?][] = [
      ["dashboard-functions.png", "/"],
      ["dashboard-runs.png", "/runs"],
      ["dashboard-run.png", `/runs/${failed.run_id}`],
      ["dashboard-events.png", "/events"],
      ["dashboard-event.png", `/events/${checkoutEvent}`],
      ["dashboard-run-dark.png", `/runs/${nap.run_id}`, { colorScheme: "dark" }],
      ["dashboard-runs-phone.png", "/runs", { viewport: { width: 390, height: 844 }, isMobile: true, colorScheme: "dark" }],
    ];
    for (const [file, urlPath, options] of shots) {
      const { page } = await openPage(urlPath, options);
      if (urlPath === `/runs/${nap.run_id}`) await page.locator('li[data-step-name="nap"][data-step-status="Sleeping"]').waitFor();
      await page.screenshot({ path: path.join(DOCS, file), fullPage: file !== "dashboard-functions.png" });
      await page.context().close();
      expect((await stat(path.join(DOCS, file))).size, file).toBeGreaterThan(10_000);
    }
  });
});
