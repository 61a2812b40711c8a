// The counter: an HTTP server on 127.0.0.1 that the last step of every run calls (`POST /hit` with
// { tag, key, ...timings }). The bench waits on it for exact completion instead of polling status.
import http from "node:http";

/**
 * Starts the counter on `port`. `expect(tag, count, timeoutMs)` answers a promise of the hits for
 * `tag` (a Map key → hit, one per distinct key; a hit has `at`, the Node time it arrived) once
 * `count` distinct keys have arrived, or rejects on timeout with the hits seen so far.
 */
export function startCounter(port) {
  const hits = new Map(); // tag → Map(key → hit)
  const waiters = new Map(); // tag → { count, resolve }
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const at = Date.now();
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
      } catch {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(204).end();
      const byKey = hits.get(body.tag) ?? new Map();
      hits.set(body.tag, byKey);
      if (!byKey.has(body.key)) byKey.set(body.key, { ...body, at });
      const waiter = waiters.get(body.tag);
      if (waiter && byKey.size >= waiter.count) {
        waiters.delete(body.tag);
        waiter.resolve(byKey);
      }
    });
  });
  server.keepAliveTimeout = 60_000;

  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(port, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${port}`,
        expect(tag, count, timeoutMs) {
          const byKey = hits.get(tag) ?? new Map();
          hits.set(tag, byKey);
          if (byKey.size >= count) return Promise.resolve(byKey);
          const hitsPromise = new Promise((resolveHits, rejectHits) => {
            const timer = setTimeout(() => {
              waiters.delete(tag);
              rejectHits(Object.assign(new Error(`counter: ${byKey.size} of ${count} hits for ${tag} after ${timeoutMs} ms`), { hits: byKey }));
            }, timeoutMs);
            waiters.set(tag, {
              count,
              resolve: (h) => {
                clearTimeout(timer);
                resolveHits(h);
              },
            });
          });
          // A measurement that failed before awaiting its hits (a send answered 503) must not end
          // the bench with an unhandled rejection 30 s later: the timeout still rejects for an awaiter.
          hitsPromise.catch(() => {});
          return hitsPromise;
        },
        /** Hits for `tag` so far. */
        seen: (tag) => hits.get(tag) ?? new Map(),
        close: () => new Promise((r) => server.close(() => r())),
      }),
    );
  });
}
