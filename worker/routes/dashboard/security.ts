import type { MiddlewareHandler } from "hono";

/**
 * What a dashboard page may load: only the Worker's own script and stylesheet, no inline script or
 * style (a payload that smuggled markup past escaping still could not run), no framing.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * Sets the dashboard's Content-Security-Policy and the headers that go with it on every response.
 * (The auth layer's `pageSecurityHeaders` takes this over when the two are merged.)
 *
 * @example
 * dashboard.use(securityHeaders);
 */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.res.headers.set("content-security-policy", DASHBOARD_CSP);
  c.res.headers.set("x-content-type-options", "nosniff");
  c.res.headers.set("referrer-policy", "same-origin");
  c.res.headers.set("x-frame-options", "DENY");
};
