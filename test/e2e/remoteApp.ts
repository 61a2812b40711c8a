/**
 * An app on the official `inngest` SDK, served by `inngest/node` from this test process: the
 * functions are written as an Inngest user writes them today, untouched by Stepflare. `calls`
 * counts how often each step body ran, so a test can tell a memoized step from one run again.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Inngest, NonRetriableError, referenceFunction, RetryAfterError } from "inngest";
import { serve } from "inngest/node";

export const calls = new Map<string, number>();

/** The ids of createApp()'s functions once synced, sorted (the SDK adds `<id>-failure` for an onFailure handler). */
export const NODE_APP_FUNCTION_IDS = ["audit", "cancellable", "checkpointed", "child", "doomed", "doomed-failure", "fetcher", "flaky", "multi-step", "parent", "uncheckpointed", "waiter"].map((id) => `node-app-${id}`);
const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);

/** The app in dev mode (`INNGEST_DEV=1`), or in cloud mode with a signing key and an event key. */
export function createApp(baseUrl: string, options: { id?: string; signingKey?: string; eventKey?: string } = {}) {
  const inngest = options.signingKey
    ? new Inngest({ id: options.id ?? "node-app", isDev: false, baseUrl, signingKey: options.signingKey, eventKey: options.eventKey })
    : new Inngest({ id: options.id ?? "node-app", isDev: true, baseUrl });

  const multiStep = inngest.createFunction({ id: "multi-step", triggers: [{ event: "remote/multi" }] }, async ({ event, step }) => {
    const a = await step.run("a", () => (count(`a:${event.data.tag}`), `a-${event.data.tag}`));
    await step.sleep("nap", "1s");
    const [b, c] = await Promise.all([step.run("b", () => (count(`b:${event.data.tag}`), "b")), step.run("c", () => (count(`c:${event.data.tag}`), "c"))]);
    return { a, b, c };
  });

  const flaky = inngest.createFunction({ id: "flaky", retries: 2, triggers: [{ event: "remote/flaky" }] }, async ({ event, step, attempt }) => {
    const result = await step.run("flaky-step", () => {
      count(`flaky:${event.data.tag}`);
      if (attempt === 0) throw new RetryAfterError("not yet", "1s");
      return `ok after ${attempt + 1} attempts`;
    });
    return result;
  });

  const doomed = inngest.createFunction(
    {
      id: "doomed",
      triggers: [{ event: "remote/doomed" }],
      onFailure: async ({ event, error }) => {
        count(`onFailure:${event.data.event.data.tag}:${error.message}`);
      },
    },
    async ({ event, step }) => {
      await step.run("give-up", () => {
        count(`give-up:${event.data.tag}`);
        throw new NonRetriableError("card declined");
      });
    },
  );

  const waiter = inngest.createFunction({ id: "waiter", triggers: [{ event: "remote/wait" }] }, async ({ event, step }) => {
    const reply = await step.waitForEvent("reply", { event: "remote/reply", match: "data.id", timeout: "1m" });
    return { got: reply?.data.answer ?? null, for: event.data.id };
  });

  const child = inngest.createFunction({ id: "child", triggers: [{ event: "remote/child" }] }, async ({ event, step }) => {
    const doubled = await step.run("double", () => (event.data.n as number) * 2);
    return { doubled };
  });

  const parent = inngest.createFunction({ id: "parent", triggers: [{ event: "remote/parent" }] }, async ({ event, step }) => {
    const fromRemote = await step.invoke("call-child", { function: child, data: { n: event.data.n } });
    // A function of the Stepflare Worker itself (examples/hello.ts), reached by its id.
    const fromLocal = await step.invoke("call-local", { function: referenceFunction({ functionId: "hello" }), data: { name: "remote" } });
    return { fromRemote, fromLocal };
  });

  // Inngest's end-of-run event, for one function: Stepflare sends it only because a function listens.
  const audit = inngest.createFunction(
    { id: "audit", triggers: [{ event: "inngest/function.finished", if: "event.data.function_id == 'node-app-child'" }] },
    async ({ event }) => {
      count(`finished:${JSON.stringify(event.data.result)}`);
    },
  );

  const cancellable = inngest.createFunction(
    { id: "cancellable", cancelOn: [{ event: "remote/cancel", match: "data.id" }], triggers: [{ event: "remote/long" }] },
    async ({ event, step }) => {
      await step.sleep("long-nap", "10m");
      count(`after-nap:${event.data.id}`);
    },
  );

  // step.fetch: the executor makes the request for the app (the SDK's Gateway op) and memoizes the response.
  const fetcher = inngest.createFunction({ id: "fetcher", triggers: [{ event: "remote/fetch" }] }, async ({ event, step }) => {
    const response = await step.fetch(String(event.data.url), { method: "POST", body: "ping", headers: { "x-test": "1" } });
    const text = await step.run("read", () => "memoized");
    return { status: response.status, body: await response.text(), echoed: response.headers.get("x-echo"), text };
  });

  // Five steps in a row: with checkpointing (v4's default) the SDK runs them in one call; without, one call each.
  const sequence = (id: string, checkpointing: boolean) =>
    inngest.createFunction({ id, checkpointing, triggers: [{ event: `remote/${id}` }] }, async ({ event, step }) => {
      let total = 0;
      for (let i = 1; i <= 5; i++) total += await step.run(`add-${i}`, () => (count(`${id}:${i}:${event.data.tag}`), i));
      return { total };
    });

  return { inngest, functions: [multiStep, flaky, doomed, waiter, child, parent, audit, cancellable, fetcher, sequence("checkpointed", true), sequence("uncheckpointed", false)] };
}

/**
 * Serves `functions` at `/api/inngest` on `port` of 127.0.0.1 (a free one by default); answers the
 * serve URL, the HTTP status of every answer the app gave (method and status), and a stop().
 */
export async function serveApp(app: ReturnType<typeof createApp>, functions = app.functions, port = 0): Promise<{ url: string; answers: string[]; stop(): Promise<void> }> {
  const handler = serve({ client: app.inngest, functions });
  const answers: string[] = [];
  const server = http.createServer((req, res) => {
    res.on("finish", () => answers.push(`${req.method} ${res.statusCode}`));
    if (req.url?.startsWith("/api/inngest")) return handler(req, res);
    // What a function's step.fetch calls: answers with the method, body and a header it was sent.
    if (req.url === "/echo") {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        count("echo");
        res.writeHead(201, { "x-echo": String(req.headers["x-test"]) });
        res.end(`${req.method} ${body}`);
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/api/inngest`,
    answers,
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
