import type { MiddlewareHandler } from "hono";

/**
 * The policy every page is sent with: scripts, styles and fetches only from the Worker itself
 * (pages load `/assets/...`; no inline script or style, no `eval`), forms post only here, and no
 * other site may frame a page.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * Security headers for HTML pages (the login page and every dashboard route): a strict
 * Content-Security-Policy, `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin`.
 * Set after the handler, so they are on every answer of the route, redirects and errors included.
 *
 * @example
 * app.use("/runs/*", pageHeaders, requireDashboardSession);
 */
export const pageHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.res.headers.set("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  c.res.headers.set("X-Content-Type-Options", "nosniff");
  c.res.headers.set("Referrer-Policy", "same-origin");
};
