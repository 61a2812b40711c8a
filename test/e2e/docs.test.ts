/**
 * The getting-started page runs as written (issue 23): every fenced `sh` block that follows a `<!-- tested -->`
 * comment in docs/getting-started.md is run, in the page's order, against `wrangler dev` as `npm run dev` runs it
 * (examples/, dev mode), with the page's port 8787 swapped for the test's. Each block must exit 0, and every
 * answer it prints must be JSON without an `error`.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, waitFor, type DevServer } from "./wrangler.ts";

const PAGE = path.resolve(import.meta.dirname, "../../docs/getting-started.md");
/** How long a block may keep failing before the test gives up: a run the block reads may still be on its way. */
const BLOCK_TIMEOUT_MS = 15_000;

/** The `sh` blocks marked `<!-- tested -->` (the comment, then at most blank lines, then the fence). */
function testedBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/<!-- tested -->\s*\n```sh\n([\s\S]*?)\n```/g)].map((match) => match[1]!);
}

/**
 * The block as bash runs it: the page's host and port replaced by the server's, stopping at the first command that
 * fails, and each `curl` failing on an HTTP error and ending its answer with a newline, so answers are one per line.
 */
function script(block: string, baseUrl: string): string {
  const body = block.replace(/(?:https?:\/\/)?(?:localhost|127\.0\.0\.1):8787/g, baseUrl);
  return `set -eo pipefail\ncurl() { command curl --fail-with-body "$@"; echo; }\n${body}\n`;
}

/** Runs one block; answers its output lines, or undefined while it fails (retried until the deadline). */
async function run(block: string, baseUrl: string): Promise<string[] | undefined> {
  const { stdout } = await promisify(execFile)("bash", ["-c", script(block, baseUrl)], { timeout: 10_000 });
  const lines = stdout.split("\n").filter((line) => line.trim() !== "");
  for (const line of lines) {
    const answer = JSON.parse(line) as unknown;
    if (answer !== null && typeof answer === "object" && "error" in answer) throw new Error(`answered an error: ${line}`);
  }
  return lines;
}

const blocks = testedBlocks(readFileSync(PAGE, "utf8"));
let dev: DevServer;

beforeAll(async () => {
  dev = await startDevServer(["wrangler.toml"], "/v1/functions");
});

afterAll(async () => {
  await dev?.stop();
});

describe("docs/getting-started.md", () => {
  it("marks its curl tour and REST examples for this test", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    expect(blocks.join("\n")).toContain("/v1/runs/$RUN_ID/rerun");
  });

  // In order, as a reader runs them: a later block reads what an earlier one started.
  it.each(blocks.map((block, i) => [i + 1, block] as const))("block %i runs and answers JSON without an error", async (_, block) => {
    const lines = await waitFor(`block:\n${block}`, BLOCK_TIMEOUT_MS, dev, () => run(block, dev.baseUrl));
    expect(lines.length).toBeGreaterThan(0);
  });
});
