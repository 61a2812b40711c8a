// The hit counter: an HTTP server on 127.0.0.1 that the chaos Worker's step bodies report to, and
// the aimed kills that wait for one of its answers.
import http from "node:http";
import { hits } from "./context.mjs";

// The counter: every step body POSTs { root, key, event, aim? } here before returning, key
// `<label>/<step>#<attempt>`. Answers after a random 0–150 ms, which widens the window in which a
// kill cuts a step mid-flight. A hit marked `aim` resolves a kill waiting for that root as soon as
// the counter answers it (kills aimed just after a step a `step.sendEvent` follows).

/** root → resolvers of kills waiting for that root's next aimed hit to be answered. */
const aimWaiters = new Map();
export const nextAimedHit = (root) => new Promise((resolve) => aimWaiters.set(root, [...(aimWaiters.get(root) ?? []), resolve]));

export function startCounter() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
        const m = /^(.*)#(\d+)$/.exec(body.key);
        if (!m) throw new Error(`key ${body.key} has no #attempt`);
        hits.push({ root: body.root, key: body.key, step: m[1], attempt: Number(m[2]), event: body.event, run: body.run, at: Date.now() });
      } catch {
        res.writeHead(400).end();
        return;
      }
      setTimeout(() => {
        const waiting = body.aim ? aimWaiters.get(body.root) : undefined;
        if (waiting) {
          aimWaiters.delete(body.root);
          for (const resolve of waiting) resolve(body.key);
        }
        res.writeHead(204).end();
      }, Math.random() * 150);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() }));
  });
}
