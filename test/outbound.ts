// The Workers pool's outbound fetch (vitest.config.ts), run in Node: requests to ECHO_HOST reach a
// tiny server that counts them, so tests of step.fetch can tell how often a request was really sent.
// Every other request goes out as it would without it.

export const ECHO_HOST = "echo.stepflare.test";

const hits = new Map<string, number>();

/** `GET /hits/<path>` answers how often `<path>` was requested; any other request is counted and echoed. */
export async function outboundFetch(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.hostname !== ECHO_HOST) return fetch(request);
  if (url.pathname.startsWith("/hits/")) return Response.json({ hits: hits.get(url.pathname.slice("/hits".length)) ?? 0 });
  const count = (hits.get(url.pathname) ?? 0) + 1;
  hits.set(url.pathname, count);
  const body = request.method === "GET" || request.method === "HEAD" ? null : await request.text();
  return Response.json({ method: request.method, path: url.pathname, body, hits: count }, { status: 202, statusText: "Accepted", headers: { "x-echo": "1" } });
}
