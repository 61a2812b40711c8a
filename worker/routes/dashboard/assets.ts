import { Hono } from "hono";
import { APP_JS } from "./script.ts";
import { APP_CSS } from "./styles.ts";

/** A short hash of the assets, in their URLs: a new version of the Worker is never served a stale cached file. */
export const ASSET_VERSION = fnv1a(APP_CSS + APP_JS);

const ASSETS: Record<string, { body: string; type: string }> = {
  "app.css": { body: APP_CSS, type: "text/css; charset=utf-8" },
  "app.js": { body: APP_JS, type: "text/javascript; charset=utf-8" },
};

/** `GET /assets/app.css` and `/assets/app.js`: the dashboard's only stylesheet and script, from the Worker itself. */
export const assetRoutes = new Hono();

assetRoutes.get("/assets/:file", (c) => {
  const asset = ASSETS[c.req.param("file")];
  if (!asset) return c.json({ error: `no asset ${JSON.stringify(c.req.param("file"))}` }, 404);
  // Versioned URLs never change content; an unversioned one is checked again.
  const cache = c.req.query("v") === ASSET_VERSION ? "public, max-age=31536000, immutable" : "no-cache";
  return c.body(asset.body, 200, { "content-type": asset.type, "cache-control": cache });
});

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}
