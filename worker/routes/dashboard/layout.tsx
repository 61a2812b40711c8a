import type { Child } from "hono/jsx";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { ApiAnswer, DashboardContext } from "./api.ts";
import { getCookie } from "hono/cookie";
import { SESSION_COOKIE } from "../session.ts";
import { ASSET_VERSION } from "./assets.ts";

export type PageName = "functions" | "runs" | "events" | "apps" | "health";

const NAV: { page: PageName; href: string; label: string }[] = [
  { page: "functions", href: "/", label: "Functions" },
  { page: "runs", href: "/runs", label: "Runs" },
  { page: "events", href: "/events", label: "Events" },
  { page: "apps", href: "/apps", label: "Apps" },
  { page: "health", href: "/health", label: "Health" },
];

/**
 * Every page's frame: the header with the navigation, the Worker's own stylesheet and script
 * (nothing from elsewhere: the CSP allows only 'self'), and the page in <main>.
 */
/** A page's <head>: the Worker's own stylesheet (and script), nothing from elsewhere. */
export function PageHead({ title, withScript = false }: { title: string; withScript?: boolean }) {
  return (
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="color-scheme" content="light dark" />
      <title>{`${title} · Stepflare`}</title>
      <link rel="stylesheet" href={`/assets/app.css?v=${ASSET_VERSION}`} />
      <link rel="icon" href="data:," />
      {withScript ? <script src={`/assets/app.js?v=${ASSET_VERSION}`} defer></script> : null}
    </head>
  );
}

export function Layout({ title, active, signedIn, children }: { title: string; active?: PageName; signedIn?: boolean; children: Child }) {
  return (
    <html lang="en">
      <PageHead title={title} withScript />
      <body>
        <header class="top">
          <a class="brand" href="/">
            Stepflare
          </a>
          <nav>
            {NAV.map((item) => (
              <a href={item.href} class={item.page === active ? "active" : undefined} aria-current={item.page === active ? "page" : undefined}>
                {item.label}
              </a>
            ))}
          </nav>
          {signedIn ? (
            <form class="logout" method="post" action="/logout">
              <button type="submit">Log out</button>
            </form>
          ) : null}
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}

/** True when the viewer came in with the login's session cookie (and so can log out). */
export function hasSession(c: DashboardContext): boolean {
  return getCookie(c, SESSION_COOKIE) !== undefined;
}

/** Answers a page: the doctype, then the page's HTML. */
export async function renderPage(c: DashboardContext, page: JSX.Element, status = 200): Promise<Response> {
  return c.html(`<!DOCTYPE html>${await page.toString()}`, status as 200);
}

/** A page whose API call failed: the API's own message and status (a 404 stays a 404). */
export function errorPage(c: DashboardContext, answer: Extract<ApiAnswer<unknown>, { ok: false }>, active?: PageName): Promise<Response> {
  const status = answer.status >= 400 && answer.status < 600 ? answer.status : 502;
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title="Error" active={active}>
      <section class="card">
        <h1>{status === 404 ? "Not found" : "Something went wrong"}</h1>
        <p class="error-message">{answer.error}</p>
        <p>
          <a href="/">Back to the functions</a>
        </p>
      </section>
    </Layout>,
    status,
  );
}
