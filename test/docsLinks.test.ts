/**
 * The docs hold together (issue 23): every relative link in README.md and docs/*.md names a file or folder that
 * exists, every `#anchor` names a heading of its page (as GitHub makes heading ids), and the README stays a door,
 * at most 300 lines. Read from disk in Node.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "..");
const PAGES = ["README.md", ...readdirSync(path.join(ROOT, "docs")).filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`)];

/** The page without its fenced code blocks, whose text is not markdown. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
}

/** The ids GitHub gives a page's headings: lowercased, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, text] of withoutFences(markdown).matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const slug = text!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/<[^>]+>/g, "")
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** The page's link targets: markdown links and images, and `<img src>`; inline code is not searched. */
function linksOf(markdown: string): string[] {
  const text = withoutFences(markdown).replace(/`[^`\n]*`/g, "");
  const links = [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1]!);
  const images = [...text.matchAll(/<img [^>]*src="([^"]+)"/g)].map((match) => match[1]!);
  return [...links, ...images];
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

describe("the docs' links", () => {
  it("finds the pages", () => {
    expect(PAGES).toContain("docs/getting-started.md");
    expect(PAGES.length).toBeGreaterThan(10);
  });

  it.each(PAGES)("every relative link and anchor in %s resolves", (page) => {
    const markdown = readFileSync(path.join(ROOT, page), "utf8");
    const broken: string[] = [];
    for (const target of linksOf(markdown)) {
      if (isExternal(target)) continue;
      const [file, anchor] = target.split("#", 2) as [string, string | undefined];
      const resolved = file === "" ? path.join(ROOT, page) : path.resolve(path.dirname(path.join(ROOT, page)), decodeURIComponent(file));
      if (!resolved.startsWith(ROOT + path.sep) || !existsSync(resolved)) {
        broken.push(`${target}: no such file in the repository`);
        continue;
      }
      if (anchor === undefined) continue;
      if (statSync(resolved).isDirectory() || !resolved.endsWith(".md")) {
        broken.push(`${target}: an anchor into a file that is not markdown`);
        continue;
      }
      if (!anchorsOf(readFileSync(resolved, "utf8")).has(anchor)) broken.push(`${target}: no heading with that id`);
    }
    expect(broken).toEqual([]);
  });

  it("README.md is a door: at most 300 lines", () => {
    const lines = readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").length;
    expect(lines).toBeLessThanOrEqual(300);
  });
});
