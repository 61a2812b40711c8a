import { Hono, type Context } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import type { Env } from "../platform/env.ts";
import { isDevMode, signingKey } from "../platform/env.ts";
import { missingSecret, refuseCrossOriginWrite, secretsEqual } from "./auth.ts";
import { PageHead } from "./dashboard/layout.tsx";
import { readLimited, SMALL_BODY_BYTES } from "./body.ts";
import { jsonError } from "./errors.ts";
import { pageHeaders } from "./pageHeaders.ts";
import { SESSION_COOKIE, SESSION_TTL_MS, signSession } from "./session.ts";

/**
 * The dashboard's login: `GET /login` shows a form for the signing key, `POST /login` checks it and
 * sets the session cookie (see session.ts) and sends the browser on to `next`, `POST /logout` clears
 * it. In dev mode without a signing key there is nothing to log in to: both send you on to `next`.
 *
 * @example
 * curl -si localhost:8787/login -d key=$STEPFLARE_SIGNING_KEY -d next=/runs # 303, Set-Cookie: stepflare_session=...
 */
export const loginRoutes = new Hono<{ Bindings: Env }>();

loginRoutes.use("/login", pageHeaders);
loginRoutes.use("/logout", pageHeaders);

loginRoutes.get("/login", (c) => {
  const next = safeNext(c.req.query("next"), new URL(c.req.url).origin);
  if (!signingKey(c.env)) return isDevMode(c.env) ? c.redirect(next, 303) : missingSecret(c, "STEPFLARE_SIGNING_KEY");
  return page(c, next, 200);
});

loginRoutes.post("/login", async (c) => {
  const refused = refuseCrossOriginWrite(c);
  if (refused) return refused;
  // A form of two short fields: a body past the limit is not read on, however it is sent.
  const bytes = await readLimited(c.req.raw, SMALL_BODY_BYTES);
  if (bytes === null) return jsonError(c, 413, `request body is over ${SMALL_BODY_BYTES} bytes (16 KiB), the limit of a login form`);
  const body = await formFields(bytes, c.req.header("content-type"));
  const next = safeNext(body.next, new URL(c.req.url).origin);
  const key = signingKey(c.env);
  if (!key) return isDevMode(c.env) ? c.redirect(next, 303) : missingSecret(c, "STEPFLARE_SIGNING_KEY");
  const given = typeof body.key === "string" ? body.key : "";
  if (given === "" || !(await secretsEqual(given, key))) return page(c, next, 401, "That is not the signing key.");
  setCookie(c, SESSION_COOKIE, await signSession(key, Date.now() + SESSION_TTL_MS), {
    path: "/",
    httpOnly: true,
    sameSite: "Strict",
    // Dev mode may be served over plain http (Safari drops Secure cookies on http://localhost).
    secure: !isDevMode(c.env),
    maxAge: SESSION_TTL_MS / 1000,
  });
  return c.redirect(next, 303);
});

loginRoutes.post("/logout", (c) => {
  const refused = refuseCrossOriginWrite(c);
  if (refused) return refused;
  deleteCookie(c, SESSION_COOKIE, { path: "/", httpOnly: true, sameSite: "Strict", secure: !isDevMode(c.env) });
  return c.redirect("/login", 303);
});

/** The fields of a form body (urlencoded or multipart, as a browser sends it); none if it is neither. */
async function formFields(bytes: Uint8Array, contentType: string | undefined): Promise<Record<string, unknown>> {
  try {
    const form = await new Response(bytes, { headers: { "content-type": contentType ?? "application/x-www-form-urlencoded" } }).formData();
    return Object.fromEntries([...form.entries()].filter(([, value]) => typeof value === "string"));
  } catch {
    return {};
  }
}

/**
 * Where to go after logging in: `raw` when it is a path on this origin, else `/`. A `next` of
 * `//evil.com`, `/\evil.com`, `/.//evil.com` or `https://evil.com` would make the login an open redirect.
 *
 * @example
 * safeNext("/runs?status=Failed", "https://sf.example"); // "/runs?status=Failed"
 * safeNext("//evil.com", "https://sf.example"); // "/"
 */
export function safeNext(raw: unknown, origin: string): string {
  // Browsers read a backslash as a slash, and drop tabs and newlines from URLs.
  if (typeof raw !== "string" || !raw.startsWith("/") || raw.startsWith("//") || /[\\\u0000-\u001f\u007f]/.test(raw)) return "/";
  const url = new URL(raw, origin);
  const target = url.pathname + url.search + url.hash;
  // Checked again after parsing: `/.//evil.com` and `/%2e%2e//evil.com` normalise to `//evil.com`.
  return url.origin === origin && !target.startsWith("//") ? target : "/";
}

function page(c: Context<{ Bindings: Env }>, next: string, status: 200 | 401, error?: string) {
  return c.html(html`<!doctype html>${<LoginPage next={next} error={error} />}`, status);
}

/** The form; Hono JSX escapes every value it shows (`next` comes from the URL). */
function LoginPage({ next, error }: { next: string; error?: string | undefined }) {
  return (
    <html lang="en">
      <PageHead title="Log in" />
      <body>
        <main>
          <section class="card login">
            <h1 class="brand">Stepflare</h1>
            <form method="post" action="/login">
              <input type="hidden" name="next" value={next} />
              <label for="key">Signing key</label>
              <input id="key" name="key" type="password" autocomplete="current-password" required autofocus />
              <button class="primary" type="submit">
                Log in
              </button>
            </form>
            {error ? <p role="alert">{error}</p> : null}
          </section>
        </main>
      </body>
    </html>
  );
}
