// A shop's own Worker: it sends events to Stepflare, starts functions and reads runs through the
// STEPFLARE service binding (examples/shop-frontend/wrangler.toml), as any of your Workers can.
import type { InvokeAnswer, SendAnswer } from "../../worker/rpc.ts";
import type { RunView } from "../../worker/views/runView.ts";

/** StepflareService as a binding to it answers. */
interface StepflareBinding {
  send(events: unknown): Promise<SendAnswer>;
  invoke(functionId: string, data?: Record<string, unknown>): Promise<InvokeAnswer>;
  getRun(runId: string): Promise<RunView | null>;
  cancel(runId: string): Promise<RunView | null>;
}

interface Env {
  STEPFLARE: StepflareBinding;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    // An order placed on the shop becomes an event, validated as POST /e/:key validates it.
    if (request.method === "POST" && url.pathname === "/orders") {
      const order = (await request.json()) as Record<string, unknown>;
      const answer = await env.STEPFLARE.send({ name: "shop/product.imported", data: order });
      return Response.json(answer, { status: answer.status });
    }
    // A greeting started directly, without an event.
    if (request.method === "POST" && url.pathname === "/greetings") {
      const answer = await env.STEPFLARE.invoke("hello", (await request.json()) as Record<string, unknown>);
      return Response.json(answer, { status: answer.status });
    }
    const run = /^\/runs\/([^/]+)$/.exec(url.pathname);
    if (run && request.method === "GET") return found(await env.STEPFLARE.getRun(run[1]!));
    if (run && request.method === "DELETE") return found(await env.STEPFLARE.cancel(run[1]!));
    return Response.json({ error: `no route for ${request.method} ${url.pathname}` }, { status: 404 });
  },
};

function found(run: RunView | null): Response {
  return run ? Response.json({ data: run }) : Response.json({ error: "no such run" }, { status: 404 });
}
