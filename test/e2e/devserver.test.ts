/**
 * `wrangler dev` as a user runs it (migrations applied, then the dev server), driven over HTTP only:
 * the event API, the REST API, and the official `inngest` SDK sending to it.
 *
 * The server runs detached in its own process group, which afterAll (and a process exit hook) kills
 * by group id: wrangler starts npm, node, esbuild and workerd children, and none may outlive the test.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Inngest } from "inngest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, signalGroup, sleep, stopProcessGroup } from "../../bench/lib/processes.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const NPX = process.platform === "win32" ? "npx.cmd" : "npx";
const READY_TIMEOUT_MS = 60_000;
const RUN_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 50;

// A quiet, non-interactive wrangler that never phones home.
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1", FORCE_COLOR: "0" };

let server: ChildProcess | undefined;
let persistDir: string | undefined;
let baseUrl = "";
let serverLog = "";

interface RunSummary {
  run_id: string;
  function_id: string;
  event_id: string;
  status: string;
  output: unknown;
  error: { message?: string } | null;
}
interface RunDetail extends RunSummary {
  steps: { id: string; name: string; status: string; attempts: number; output: unknown }[];
}

/** Kills the server's whole process group: SIGTERM, then SIGKILL if anything in it is still alive. */
async function stopServer(): Promise<void> {
  const pid = server?.pid;
  if (!server || pid === undefined) return;
  await stopProcessGroup(pid);
  server = undefined;
}

// Last resort if the test process dies before afterAll: synchronous, the group of our own child only.
const killOnExit = () => {
  if (server?.pid !== undefined) signalGroup(server.pid, "SIGKILL");
};

/** Polls `probe` until it answers something other than undefined, or throws when `timeoutMs` passes. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}\n--- wrangler output (tail) ---\n${serverLog.slice(-4000)}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

async function getJson<T>(urlPath: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${baseUrl}${urlPath}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as T };
}

async function postEvents(body: unknown, key = "dev"): Promise<{ status: number; body: { ids?: string[]; status?: number; error?: string } }> {
  const res = await fetch(`${baseUrl}/e/${key}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as { ids?: string[]; status?: number; error?: string } };
}

const TERMINAL = new Set(["Completed", "Failed", "Cancelled"]);

/** Waits until the event has `count` runs and all of them are finished; answers them. */
function finishedRuns(eventId: string, count = 1): Promise<RunSummary[]> {
  return waitFor(`${count} finished run(s) of event ${eventId}`, RUN_TIMEOUT_MS, async () => {
    const { status, body } = await getJson<{ data: RunSummary[] }>(`/v1/events/${encodeURIComponent(eventId)}/runs`);
    if (status !== 200) return undefined;
    return body.data.length >= count && body.data.every((run) => TERMINAL.has(run.status)) ? body.data : undefined;
  });
}

beforeAll(async () => {
  persistDir = await mkdtemp(path.join(os.tmpdir(), "stepflare-e2e-"));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;

  await promisify(execFile)(NPX, ["wrangler", "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir], {
    cwd: ROOT,
    env: childEnv,
    timeout: 60_000,
  });

  process.once("exit", killOnExit);
  server = spawn(NPX, ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistDir, "--show-interactive-dev-session=false"], {
    cwd: ROOT,
    env: childEnv,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (chunk: Buffer) => {
    serverLog = (serverLog + chunk.toString()).slice(-64_000);
  };
  server.stdout?.on("data", keep);
  server.stderr?.on("data", keep);
  const child = server;

  await waitFor(`wrangler dev on ${baseUrl}`, READY_TIMEOUT_MS, async () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw Object.assign(new Error(`wrangler dev exited (${child.exitCode ?? child.signalCode})\n${serverLog.slice(-4000)}`), { fatal: true });
    }
    const res = await fetch(`${baseUrl}/v1/functions`, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? true : undefined;
  });
});

afterAll(async () => {
  await stopServer();
  process.removeListener("exit", killOnExit);
  if (persistDir) await rm(persistDir, { recursive: true, force: true });
});

describe("wrangler dev", () => {
  it("lists the example functions", async () => {
    const { status, body } = await getJson<{ data: { id: string; triggers: unknown[] }[] }>("/v1/functions");
    expect(status).toBe(200);
    const ids = body.data.map((fn) => fn.id);
    expect(ids).toEqual(expect.arrayContaining(["hello", "import-product-images", "urgent-shop-events", "charge-card"]));
    expect(body.data.find((fn) => fn.id === "hello")?.triggers).toEqual([{ event: "demo/hello" }]);
  });

  it("runs demo/hello and shop/product.imported sent to POST /e/:key", async () => {
    const sent = await postEvents([
      { name: "demo/hello", data: { name: "E2E" } },
      { name: "shop/product.imported", data: { productId: "p-1", imageURLs: ["a", "b"] } },
    ]);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ status: 200 });
    const [helloId, importId] = sent.body.ids ?? [];
    expect(helloId).toBeTypeOf("string");
    expect(importId).toBeTypeOf("string");

    const [helloRuns, importRuns] = await Promise.all([finishedRuns(helloId!), finishedRuns(importId!)]);
    expect(helloRuns).toMatchObject([{ function_id: "hello", event_id: helloId, status: "Completed", output: { greeting: "Hello, E2E!" } }]);
    expect(importRuns).toMatchObject([
      {
        function_id: "import-product-images",
        event_id: importId,
        status: "Completed",
        output: { sizes: [{ url: "a?copied", width: 100 }, { url: "b?copied", width: 200 }] },
      },
    ]);

    const hello = await getJson<{ data: RunDetail }>(`/v1/runs/${helloRuns[0]!.run_id}`);
    expect(hello.status).toBe(200);
    expect(hello.body.data.steps).toMatchObject([{ name: "greet", status: "Completed", attempts: 1, output: "Hello, E2E!" }]);

    const imported = await getJson<{ data: RunDetail }>(`/v1/runs/${importRuns[0]!.run_id}`);
    expect(imported.status).toBe(200);
    const steps = imported.body.data.steps;
    expect(steps.map((step) => step.name)).toEqual(["copy-images", "wait", "resize", "resize:1", "announce"]);
    expect(steps.every((step) => step.status === "Completed")).toBe(true);
    expect(steps[0]!.output).toEqual(["a?copied", "b?copied"]);

    // step.sendEvent stored a real event: the follow-up is in the event log.
    const announced = (steps[4]!.output as { ids: string[] }).ids[0]!;
    const followUp = await getJson<{ data: { name: string; data: unknown } }>(`/v1/events/${announced}`);
    expect(followUp.status).toBe(200);
    expect(followUp.body.data).toMatchObject({ name: "shop/product.ready", data: { productId: "p-1" } });
  });

  it("fails a run on NonRetriableError and says why", async () => {
    const sent = await postEvents({ name: "billing/charge.requested", data: { amount: 5 } });
    expect(sent.status).toBe(200);
    const [run] = await finishedRuns(sent.body.ids![0]!);
    expect(run).toMatchObject({ function_id: "charge-card", status: "Failed", error: { message: expect.stringContaining("card declined") } });
    const detail = await getJson<{ data: RunDetail }>(`/v1/runs/${run!.run_id}`);
    expect(detail.body.data.steps).toMatchObject([{ name: "charge", status: "Failed" }]);
  });

  it("answers 4xx JSON errors for bad input and unknown ids", async () => {
    const bad = await postEvents({ data: {} });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/name/);
    const run = await getJson<{ error: string }>("/v1/runs/no-such-run");
    expect(run.status).toBe(404);
    expect(run.body.error).toBeTypeOf("string");
  });

  it("accepts events from the official inngest SDK", async () => {
    // inngest v4: an explicit baseUrl is where send() posts (`<baseUrl>/e/<eventKey>`); with an
    // eventKey set, cloud mode sends without complaint, so no isDev or INNGEST_* env is needed.
    const inngest = new Inngest({ id: "e2e", baseUrl, eventKey: "dev" });
    const { ids } = await inngest.send([
      { name: "demo/hello", data: { name: "SDK" } },
      { name: "shop/product.imported", data: { productId: "p-sdk", imageURLs: ["x"] } },
      { name: "demo/hello", id: "e2e-sdk-dedupe-key", data: { name: "Keyed" } },
    ]);
    expect(ids).toHaveLength(3);
    expect(ids[2]).toBe("e2e-sdk-dedupe-key");

    for (const id of ids) {
      const stored = await getJson<{ data: { id: string } }>(`/v1/events/${encodeURIComponent(id)}`);
      expect(stored.status).toBe(200);
      expect(stored.body.data.id).toBe(id);
    }
    const [greeted, imported, keyed] = await Promise.all(ids.map((id) => finishedRuns(id)));
    expect(greeted).toMatchObject([{ function_id: "hello", status: "Completed", output: { greeting: "Hello, SDK!" } }]);
    expect(imported).toMatchObject([{ function_id: "import-product-images", status: "Completed", output: { sizes: [{ url: "x?copied", width: 100 }] } }]);
    expect(keyed).toMatchObject([{ function_id: "hello", status: "Completed", output: { greeting: "Hello, Keyed!" } }]);
  });
});
