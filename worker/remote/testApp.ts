/**
 * For tests only (Node): an app on the official `inngest` SDK served in process by its
 * `inngest/edge` handler, wired to the remote executor as a RunObject wires a synced app. The
 * executor's calls reach the handler through its transport; the SDK's checkpoints reach a
 * CallCheckpoints board as `POST /v1/checkpoint/:runId/async` does, answered as that route answers.
 * `interfere` replaces answers on their way back, to play a network that is not the SDK's.
 */
import { Inngest, type InngestFunction } from "inngest";
import { serve } from "inngest/edge";
import { TestRun, type TestRunOptions } from "../../sdk/testing.ts";
import { CallCheckpoints, checkpointAnswer } from "./checkpoints.ts";
import { executeRemoteRun, type RemoteRunOptions } from "./execute.ts";
import { RemoteFunction } from "./function.ts";
import { signRequest } from "./signature.ts";
import { wireFunctionSchema, type Op } from "./wire.ts";

/** The app's serve URL (the edge handler resolves a request's URL against its Host header). */
export const APP_URL = "http://app.test/api/inngest";

/** A call on its way: its number (1 for the first), the request, and the SDK's answer to it (made only if asked for). */
export interface CallInFlight {
  n: number;
  request: Request;
  /** The executor's deadline for the call. */
  signal: AbortSignal | undefined;
  answer(): Promise<Response>;
  /** The SDK's handler, for any other request. */
  sdk(request: Request): Promise<Response>;
}

export interface TestAppOptions {
  id?: string;
  /** Cloud mode with this signing key: the SDK checks every call's signature and signs its answers. */
  signingKey?: string;
  /** Replaces the SDK's answer to a call (undefined: the SDK answers). */
  interfere?: (call: CallInFlight) => Promise<Response | undefined> | Response | undefined;
  /** Sees each checkpoint before the board takes it (`n` from 1). */
  onCheckpoint?: (n: number, ops: Op[]) => void;
}

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/**
 * Builds the app: `define` creates its functions on the given client.
 *
 * @example
 * const app = await testApp((inngest) => [inngest.createFunction({ id: "f", triggers: [{ event: "e" }] }, () => 1)]);
 * const run = app.run("f");
 */
export async function testApp(define: (inngest: Inngest.Any) => InngestFunction.Any[], options: TestAppOptions = {}) {
  const id = options.id ?? "test-app";
  const board = new CallCheckpoints();
  let checkpoints = 0;
  // The SDK's calls back to the executor (its checkpoints) reach the board, as POST /v1/checkpoint/:runId/async does.
  const executorApi: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!url.pathname.startsWith("/v1/checkpoint/")) return new Response("{}", { status: 404 });
    const { qi_id, steps } = JSON.parse(String(init?.body)) as { qi_id: string; steps: Op[] };
    options.onCheckpoint?.(++checkpoints, steps);
    const { status, body } = checkpointAnswer(await board.deliver(qi_id, steps));
    return Response.json(body, { status });
  };
  const inngest = options.signingKey
    ? new Inngest({ id, isDev: false, signingKey: options.signingKey, baseUrl: "http://executor.test", fetch: executorApi, logger: quiet })
    : new Inngest({ id, isDev: true, baseUrl: "http://executor.test", fetch: executorApi, logger: quiet });
  const functions = define(inngest);
  const handler = serve({ client: inngest, functions });
  const withHost = (request: Request) => {
    const headers = new Headers(request.headers);
    headers.set("host", "app.test");
    return new Request(request, { headers });
  };
  let calls = 0;
  // The executor's calls reach the SDK's handler in process, through the executor's own transport.
  const transport: typeof fetch = async (input, init) => {
    const request = withHost(new Request(input instanceof Request ? input : String(input), init));
    const call: CallInFlight = { n: ++calls, request, signal: init?.signal ?? undefined, answer: () => handler(request.clone()), sdk: handler };
    return (await options.interfere?.(call)) ?? call.answer();
  };
  // The functions as the SDK's own in-band sync describes them (signed in cloud mode, as it requires there).
  const signed = options.signingKey ? await signRequest(JSON.stringify({ url: APP_URL }), options.signingKey) : undefined;
  const syncHeaders = { host: "app.test", "x-inngest-sync-kind": "in_band", "content-type": "application/json", ...(signed ? { "x-inngest-signature": signed.signature } : {}) };
  const sync = await handler(new Request(APP_URL, { method: "PUT", headers: syncHeaders, body: signed?.body ?? JSON.stringify({ url: APP_URL }) }));
  const synced = ((await sync.json()) as { functions: unknown[] }).functions.map((wire) => new RemoteFunction(id, wireFunctionSchema.parse(wire)));
  return {
    inngest,
    handler,
    board,
    transport,
    /** Calls made so far. */
    calls: () => calls,
    /** The synced function `<app id>-<fnId>`. */
    fn(fnId: string): RemoteFunction {
      const found = synced.find((fn) => fn.id === `${id}-${fnId}`);
      if (!found) throw new Error(`no function ${fnId} in the app`);
      return found;
    },
    /** A run of function `fnId`, kept as a RunObject keeps it, executed by the remote executor. */
    run(fnId: string, runOptions: Omit<TestRunOptions, "execute"> & { checkpointing?: boolean; executor?: RemoteRunOptions } = {}) {
      const fn = this.fn(fnId);
      const trigger = fn.triggers[0];
      const event = { id: "01TESTAPPEVENT", name: trigger && "event" in trigger ? trigger.event : "test/event", data: {}, ts: Date.now() };
      const { checkpointing, executor, ...rest } = runOptions;
      return new TestRun(() => undefined, {
        events: [event],
        retries: 3,
        quietTurns: 100_000,
        ...rest,
        execute: (input, host) => executeRemoteRun(fn, input, host, { transport, ...(checkpointing ? { checkpoints: board } : {}), ...executor }),
      });
    },
  };
}

export type TestApp = Awaited<ReturnType<typeof testApp>>;

const MiB = 1024 * 1024;

/**
 * A response whose body is `head` then `total` bytes of `fill`, in chunks of 1 MiB made as they
 * are read; `pulled()` is how many bytes were.
 */
export function lazyBody(total: number, head: string, fill: string, init: ResponseInit) {
  let pulled = 0;
  let started = false;
  const chunk = new TextEncoder().encode(fill.repeat(MiB / fill.length));
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!started && head) {
        started = true;
        const first = new TextEncoder().encode(head);
        pulled += first.length;
        return controller.enqueue(first);
      }
      if (pulled >= total) return controller.close();
      pulled += chunk.length;
      controller.enqueue(chunk);
    },
  });
  return { response: new Response(stream, init), pulled: () => pulled };
}

/** What a network that is not the SDK's may answer a call with. */
export const HOSTILE_ANSWERS = ["html", "json", "redirect", "truncated", "huge", "silent"] as const;
export type HostileAnswer = (typeof HOSTILE_ANSWERS)[number];

/**
 * An answer to `call` from something other than the SDK: a maintenance page (200, HTML); a
 * gateway's JSON (200, without the SDK's header, whose body would read as an output); a 301 to
 * the same address (followed, as fetch follows it, a GET that the SDK answers with its status
 * document); the SDK's own answer cut in half (its step ran); 64 MiB of a JSON string with the
 * SDK's header; no answer until the call's deadline.
 */
export async function hostileAnswer(kind: HostileAnswer, call: CallInFlight): Promise<Response> {
  switch (kind) {
    case "html":
      return new Response("<!doctype html><h1>Down for maintenance</h1>", { status: 200, headers: { "content-type": "text/html" } });
    case "json":
      return Response.json({ message: "Service temporarily unavailable" });
    case "redirect":
      if (call.request.redirect === "follow") return call.sdk(new Request(call.request.url, { method: "GET", headers: { host: "app.test" } }));
      return new Response(null, { status: 301, headers: { location: call.request.url } });
    case "truncated": {
      const answer = await call.answer();
      const text = await answer.text();
      return new Response(text.slice(0, Math.max(1, Math.floor(text.length / 2))), { status: answer.status, headers: answer.headers });
    }
    case "huge":
      return lazyBody(64 * MiB, '"', "x", { status: 200, headers: { "content-type": "application/json", "x-inngest-sdk": "inngest-js:v4.24.0" } }).response;
    case "silent":
      return new Promise<Response>((_, reject) => {
        const signal = call.signal;
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
  }
}
