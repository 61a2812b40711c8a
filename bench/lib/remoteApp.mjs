// Scenario 11's app on the official `inngest` SDK, served by `inngest/node` from the bench process:
// the same work as bench-n-steps (n sequential steps, the last one calls the counter), once with
// the SDK's checkpointing (v4's default) and once without. Synced to Stepflare with POST /v1/apps.
import http from "node:http";
import { Inngest } from "inngest";
import { serve } from "inngest/node";

async function hit(data) {
  const res = await fetch(`${data.counter}/hit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ tag: data.tag, key: data.i }) });
  if (!res.ok) throw new Error(`counter answered ${res.status}`);
  await res.arrayBuffer();
}

function nSteps(inngest, id, checkpointing) {
  return inngest.createFunction({ id, checkpointing, triggers: [{ event: `bench/${id}` }] }, async ({ event, step }) => {
    const steps = event.data.steps ?? 1;
    let sum = 0;
    for (let n = 0; n < steps; n++) {
      sum += await step.run(`s${n}`, async () => {
        if (n === steps - 1) await hit(event.data);
        return n;
      });
    }
    return { steps, sum };
  });
}

/** Serves the app on `port` of 127.0.0.1 and syncs it to Stepflare at `stepflareUrl`; answers stop(). */
export async function startRemoteApp(stepflareUrl, port) {
  const inngest = new Inngest({ id: "bench-app", isDev: true, baseUrl: stepflareUrl });
  const handler = serve({ client: inngest, functions: [nSteps(inngest, "remote-n-steps", true), nSteps(inngest, "remote-n-steps-plain", false)] });
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const res = await fetch(`${stepflareUrl}/v1/apps`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: `http://127.0.0.1:${port}/api/inngest` }) });
  if (!res.ok) throw new Error(`syncing the bench app answered ${res.status}: ${await res.text()}`);
  return {
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
