/**
 * The dashboard of a closed Worker (no dev mode: a signing key, as deployed) in headless Chromium
 * against `wrangler dev`: the login, an action with the session cookie from the page's own origin
 * (the API's Origin check lets it through), and the logout.
 *
 * `STEPFLARE_E2E_PORT` + 1 is its port if set (dashboard.test.ts takes the port itself).
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const RUN_TIMEOUT_MS = 30_000;
/** A signing key of the form the README documents (`openssl rand -hex 32`). */
const KEY = "d45b0a".padEnd(64, "7");

let closed: DevServer;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const port = process.env.STEPFLARE_E2E_PORT ? Number(process.env.STEPFLARE_E2E_PORT) + 1 : undefined;
  [closed, browser] = await Promise.all([
    startDevServer(["wrangler.toml"], "/login", { port, devMode: false, vars: { STEPFLARE_SIGNING_KEY: KEY, STEPFLARE_EVENT_KEYS: "test-event-key" } }),
    chromium.launch({ executablePath: CHROMIUM }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await closed?.stop();
});

describe("dashboard of a closed Worker (no dev mode)", () => {
  it("logs in, acts with the session cookie from its own origin, and logs out", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("dialog", (dialog) => void dialog.accept());
    await page.goto(`${closed.baseUrl}/runs`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.locator("#key").fill(KEY);
    await page.locator("form[action='/login'] button[type=submit]").click();
    await page.waitForURL((url) => url.pathname === "/runs");
    await page.locator("form.logout").waitFor();

    // A run to cancel, sent with the bearer; the page's Cancel goes to /v1 with the cookie and this origin.
    const sent = await fetch(`${closed.baseUrl}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ name: "tour/nap.requested", data: { sleepFor: "1h" } }),
    });
    const [eventId] = ((await sent.json()) as { ids: string[] }).ids;
    const runId = await waitFor("the nap's run", RUN_TIMEOUT_MS, closed, async () => {
      const res = await fetch(`${closed.baseUrl}/v1/events/${eventId}/runs`, { headers: { authorization: `Bearer ${KEY}` } });
      return res.ok ? ((await res.json()) as { data: { run_id: string }[] }).data[0]?.run_id : undefined;
    });
    await page.goto(`${closed.baseUrl}/runs/${runId}`);
    await page.locator("button[data-action=cancel-run]").click();
    await page.locator("h1 .badge.status-cancelled").waitFor();

    await page.locator("form.logout button").click();
    await page.waitForURL((url) => url.pathname === "/login");
    await page.goto(`${closed.baseUrl}/events`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await context.close();
  });
});
