/**
 * The dashboard's Apps page in a real headless Chromium (playwright-core) against `wrangler dev`:
 * an app on the `inngest` SDK, served by `inngest/node` from this test process, added through the
 * "Add app" form and listed with its functions; a URL that answers nothing, the API's error shown;
 * "Sync again", a failed sync's error shown on the card as text; "Remove".
 */
import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Inngest } from "inngest";
import { serve } from "inngest/node";
import { chromium, type Browser, type BrowserContextOptions, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, NODE_APP_FUNCTION_IDS, serveApp } from "./remoteApp.ts";
import { openPage as openPageAt } from "./browser.ts";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const HOSTILE = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`;
const RUN_TIMEOUT_MS = 30_000;

let dev: DevServer;
let browser: Browser;
const stops: (() => Promise<void>)[] = [];

/**
 * A one-function app `id` whose server can be broken: from then on it answers every request with a
 * 500 whose message is HTML, so a sync of it fails with that message.
 */
async function serveBreakableApp(id: string): Promise<{ url: string; breakIt(): void }> {
  const inngest = new Inngest({ id, isDev: true, baseUrl: dev.baseUrl });
  const greet = inngest.createFunction({ id: "greet", triggers: [{ event: `${id}/greet` }] }, async ({ step }) => step.run("hello", () => "hello"));
  const handler = serve({ client: inngest, functions: [greet] });
  let broken = false;
  const server = http.createServer((req, res) => {
    if (!broken) return handler(req, res);
    res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ message: HOSTILE }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stops.push(() => new Promise((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/api/inngest`, breakIt: () => void (broken = true) };
}

async function syncApp(url: string): Promise<void> {
  const res = await fetch(`${dev.baseUrl}/v1/apps`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url }) });
  expect(res.status, await res.clone().text()).toBe(200);
}

async function functionIds(): Promise<string[]> {
  const res = await fetch(`${dev.baseUrl}/v1/functions`);
  return ((await res.json()) as { data: { id: string }[] }).data.map((fn) => fn.id);
}

/** A dashboard page in a fresh context (see browser.ts). */
function openPage(urlPath: string, options: BrowserContextOptions = {}): Promise<{ page: Page; problems: string[] }> {
  return openPageAt(browser, `${dev.baseUrl}${urlPath}`, options);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  [dev, browser] = await Promise.all([startDevServer(["wrangler.toml"], "/v1/functions"), chromium.launch({ executablePath: CHROMIUM })]);
});

afterAll(async () => {
  for (const stop of stops) await stop();
  await browser?.close();
  await dev?.stop();
});

describe("dashboard: Apps", () => {
  it("adds an app through the form; it is listed with its functions, which link to their runs and are marked on the Functions page", async () => {
    const app = createApp(dev.baseUrl);
    const served = await serveApp(app);
    stops.push(served.stop);
    const { page, problems } = await openPage("/");
    await page.locator("nav a", { hasText: "Apps" }).click();
    await page.waitForURL((url) => url.pathname === "/apps");
    expect(await page.locator("nav a.active").textContent()).toBe("Apps");
    expect(await page.locator("#app-node-app").count()).toBe(0);

    await page.locator("#app-url").fill(served.url);
    await page.locator("form[data-form=add-app] button[type=submit]").click();
    await page.locator("#add-app-flash.ok").waitFor();
    expect(await page.locator("#add-app-flash").textContent()).toBe(`Added node-app with ${NODE_APP_FUNCTION_IDS.length} functions.`);
    const card = page.locator("#app-node-app");
    await card.waitFor();
    expect(await card.locator("code").first().textContent()).toBe(served.url);
    expect(await card.locator("dl.meta").textContent()).toMatch(/SDK\s*js:v4\.24\.0\s*Framework\s*nodejs\s*Last synced/);
    expect(await card.locator("li[data-function-id]").evaluateAll((items) => items.map((li) => li.getAttribute("data-function-id")).sort())).toEqual(NODE_APP_FUNCTION_IDS);
    expect(await card.locator('li[data-function-id="node-app-multi-step"]').textContent()).toContain("remote/multi");

    // A run of one of its functions, found through the function's link.
    const { ids } = await app.inngest.send({ name: "remote/multi", data: { tag: "dash" } });
    await card.locator('li[data-function-id="node-app-multi-step"] a').click();
    await page.waitForURL((url) => url.pathname === "/runs" && url.searchParams.get("function_id") === "node-app-multi-step");
    await page.locator(`#runs-live tr[data-event-id="${ids[0]}"][data-status="Completed"]`).waitFor({ timeout: RUN_TIMEOUT_MS });

    await page.goto(`${dev.baseUrl}/`);
    expect(await page.locator("#fn-node-app-multi-step a.badge[data-app-id=node-app]").getAttribute("href")).toBe("/apps#app-node-app");
    expect(await page.locator("#fn-hello a.badge[data-app-id]").count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it("shows the API's error when the URL answers nothing, and lists no app for it", async () => {
    const { page, problems } = await openPage("/apps");
    const before = await page.locator("#apps-live article[data-app-id]").count();
    await page.locator("#app-url").fill("http://127.0.0.1:9/api/inngest");
    await page.locator("form[data-form=add-app] button[type=submit]").click();
    await page.locator("#add-app-flash.bad").waitFor();
    expect(await page.locator("#add-app-flash").textContent()).toMatch(/^could not reach the app: /);
    expect(await page.locator("#apps-live article[data-app-id]").count()).toBe(before);
    expect(problems).toEqual([]);
  });

  it("syncs an app again; a failed sync's error shows on its card as text, and its functions stay", async () => {
    const app = await serveBreakableApp("breakable-app");
    await syncApp(app.url);
    const { page, problems } = await openPage("/apps");
    const sync = () => page.locator("#app-breakable-app button[data-action=sync-app]").click();

    await sync();
    await page.locator("#app-breakable-app .flash.ok").waitFor();
    expect(await page.locator("#app-breakable-app .flash").textContent()).toBe("Synced: 1 function.");
    expect(await page.locator("#app-breakable-app .app-error").count()).toBe(0);

    app.breakIt();
    await sync();
    await page.locator("#app-breakable-app .flash.bad").waitFor();
    expect(await page.locator("#app-breakable-app .flash").textContent()).toBe(`the app answered the sync with HTTP 500: ${HOSTILE}`);
    expect(await page.locator("#app-breakable-app .app-error .error-message").textContent()).toBe(`the app answered the sync with HTTP 500: ${HOSTILE}`);
    expect(await page.locator("#app-breakable-app .app-error time").count()).toBe(1);
    expect(await page.evaluate("window.__pwned")).toBeUndefined();
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.locator("#app-breakable-app li[data-function-id]").evaluateAll((items) => items.map((li) => li.getAttribute("data-function-id")))).toEqual(["breakable-app-greet"]);
    expect(await functionIds()).toContain("breakable-app-greet");

    // Loaded afresh, the page says the same (the error was escaped by the server, not only by app.js).
    await page.reload();
    expect(await page.locator("#app-breakable-app .app-error .error-message").textContent()).toBe(`the app answered the sync with HTTP 500: ${HOSTILE}`);
    expect(await page.evaluate("window.__pwned")).toBeUndefined();
    expect(problems).toEqual([]);
  });

  it("removes an app: its card and its functions are gone", async () => {
    const app = await serveBreakableApp("leaving-app");
    await syncApp(app.url);
    expect(await functionIds()).toContain("leaving-app-greet");
    const { page, problems } = await openPage("/apps");
    await page.locator("#app-leaving-app button[data-action=remove-app]").click();
    await page.locator("#app-leaving-app").waitFor({ state: "detached" });
    await waitFor("the function to leave the registry", 10_000, dev, async () => ((await functionIds()).includes("leaving-app-greet") ? undefined : true));
    await page.goto(`${dev.baseUrl}/`);
    expect(await page.locator("#fn-leaving-app-greet").count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it("fits a phone's width", async () => {
    const app = await serveBreakableApp("phone-app");
    await syncApp(app.url);
    const { page } = await openPage("/apps", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await page.locator("#app-phone-app").waitFor();
    expect(await page.evaluate<number>("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")).toBeLessThanOrEqual(390);
  });
});
