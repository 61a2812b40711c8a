/** Pages of the dashboard in headless Chromium, as its end-to-end tests open them. */
import type { Browser, BrowserContextOptions, Page } from "playwright-core";

/**
 * `url` in a fresh context, with every CSP violation and script error it reports collected;
 * every confirm() (cancel, pause, remove) is answered yes.
 */
export async function openPage(browser: Browser, url: string, options: BrowserContextOptions = {}): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("dialog", (dialog) => void dialog.accept());
  await page.goto(url);
  return { page, problems };
}
