import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { apiRoutes } from "../worker/routes/api.ts";
import { eventRoutes } from "../worker/routes/events.ts";
import type { Env } from "../worker/platform/env.ts";
import worker from "./worker.ts";
import { effectCount, eventually, finishedRuns, getRun, request, runIdOf, sendEvents, uniqueKey } from "./helpers.ts";

type Page<T> = { data: T[]; next_cursor: string | null };
type Listed = { run_id: string; function_id: string; status: string; run_started_at: string };

async function json<T>(path: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const response = await request(path, init);
  return { status: response.status, body: (await response.json()) as T };
}

const post = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** `count` rows of the runs index for a function no test registers, one second apart from `t0`. */
async function indexRuns(functionId: string, count: number, t0: number): Promise<void> {
  const statement = env.DB.prepare("INSERT INTO runs (id, function_id, event_id, status, started_at) VALUES (?1, ?2, ?3, ?4, ?5)");
  const rows = Array.from({ length: count }, (_, i) => statement.bind(`${functionId}-${String(i).padStart(4, "0")}`, functionId, `e${i}`, i % 10 === 0 ? "Failed" : "Completed", t0 + i * 1000));
  await env.DB.batch(rows);
}

describe("GET /v1/openapi.json", () => {
  it("describes every route the API and the event API serve, and nothing more", async () => {
    const { status, body } = await json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>("/v1/openapi.json");
    expect(status).toBe(200);
    expect(body.openapi).toBe("3.1.0");
    const described = Object.entries(body.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    const served = [...apiRoutes.routes, ...eventRoutes.routes]
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    expect(new Set(described)).toEqual(new Set(served));
    // Shapes come from the zod schemas: a run's steps, a page's cursor.
    expect(JSON.stringify(body)).toContain('"next_cursor"');
    expect(JSON.stringify(body)).toContain('"failed_attempts"');
  });
});

describe("GET /v1/runs", () => {
  it("pages newest first by cursor, with filters by function, status and start time", async () => {
    const fn = uniqueKey("listed");
    const t0 = Date.UTC(2026, 5, 1);
    await indexRuns(fn, 120, t0);
    const seen: Listed[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const { status, body }: { status: number; body: Page<Listed> } = await json<Page<Listed>>(`/v1/runs?function_id=${fn}&limit=50${cursor ? `&cursor=${cursor}` : ""}`);
      expect(status).toBe(200);
      seen.push(...body.data);
      cursor = body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen.map((r) => r.run_id)).toEqual(Array.from({ length: 120 }, (_, i) => `${fn}-${String(119 - i).padStart(4, "0")}`));

    const failed = await json<Page<Listed>>(`/v1/runs?function_id=${fn}&status=Failed&limit=500`);
    expect(failed.body.data.map((r) => r.status)).toEqual(Array(12).fill("Failed"));
    const window = await json<Page<Listed>>(`/v1/runs?function_id=${fn}&started_after=${new Date(t0 + 10_000).toISOString()}&started_before=${t0 + 20_000}`);
    expect(window.body.data.map((r) => r.run_id)).toEqual(Array.from({ length: 10 }, (_, i) => `${fn}-${String(19 - i).padStart(4, "0")}`));
    expect(window.body.next_cursor).toBeNull();
  });

  it("answers 400 for a bad status, cursor, time or limit, and says which", async () => {
    for (const [query, path] of [["status=Done", "status"], ["cursor=nope", "cursor"], ["started_after=yesterday", "started_after"], ["limit=0", "limit"], ["offset=5", ""]] as const) {
      const { status, body } = await json<{ error: string; path?: string }>(`/v1/runs?${query}`);
      expect(status, query).toBe(400);
      expect(body.error).toMatch(/invalid query parameter/);
      if (path) expect(body.path).toBe(path);
    }
  });
});

describe("events", () => {
  it("POST /v1/events sends as POST /e/:key does, and GET /v1/events lists by name, newest first", async () => {
    const name = `test/${uniqueKey("listed")}`;
    // One request each: events received in the same millisecond are listed in id order.
    for (const n of [1, 2, 3]) {
      const sent = await json<{ ids: string[] }>("/v1/events", post({ name, data: { n } }));
      expect(sent.status).toBe(200);
      expect(sent.body.ids).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const first = await json<Page<{ id: string; data: { n: number } }>>(`/v1/events?name=${encodeURIComponent(name)}&limit=2`);
    expect(first.body.data.map((e) => e.data.n)).toEqual([3, 2]);
    const second = await json<Page<{ data: { n: number } }>>(`/v1/events?name=${encodeURIComponent(name)}&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body).toMatchObject({ data: [{ data: { n: 1 } }], next_cursor: null });
    expect((await json<{ error: string }>("/v1/events", post({ data: {} }))).status).toBe(400);
  });
});

describe("functions", () => {
  it("POST /v1/functions/:id/invoke starts a run with the data; GET /v1/functions counts it", async () => {
    const key = uniqueKey("invoked");
    const invoked = await json<{ data: { run_id: string } }>("/v1/functions/fanout-a/invoke", post({ data: { key } }));
    expect(invoked.status).toBe(201);
    const run = await eventually(async () => {
      const found = await getRun(invoked.body.data.run_id);
      return found.status === "Completed" ? found : undefined;
    });
    expect(run.output).toBe(`a:${key}`);
    // The runs index learns the end through the queue, a moment after the run's object: wait for it.
    const stats = await eventually(async () => {
      const { body } = await json<{ data: { id: string; stats: { by_status: Record<string, number>; hours: { runs: number }[] } }[] }>("/v1/functions");
      const found = body.data.find((fn) => fn.id === "fanout-a")!.stats;
      return (found.by_status.Completed ?? 0) >= 1 ? found : undefined;
    }, 15_000, "the runs index counting a completed run of fanout-a");
    expect(stats.by_status.Completed).toBeGreaterThanOrEqual(1);
    expect(stats.hours.at(-1)!.runs).toBeGreaterThanOrEqual(1);
    expect((await json("/v1/functions/nope/invoke", post({}))).status).toBe(404);
    expect((await json("/v1/functions/fanout-a/invoke", post({ data: [1] }))).status).toBe(400);
  });
});

/** A request body sent in chunks, without a Content-Length (`Transfer-Encoding: chunked`). */
function chunked(text: string, chunkBytes = 256 * 1024): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunkBytes));
      offset += chunkBytes;
    },
  });
}

describe("request bodies over the limits", () => {
  const jsonPost = (body: BodyInit): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body });
  // In process, not through the Worker's fetcher: a body left unread past the limit is then not a lost connection.
  const inProcess = async <T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> => {
    const response = await worker.fetch!(new Request(`http://stepflare.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>, env as Env, createExecutionContext());
    return { status: response.status, body: (await response.json()) as T };
  };

  it("POST /v1/events refuses a chunked body over 3 MiB with a 413, and stores none of it", async () => {
    const name = `test/${uniqueKey("chunked")}`;
    // Nine events of 500 KiB: each under the 512 KiB per event, 4.5 MiB together.
    const events = Array.from({ length: 9 }, () => ({ name, data: { blob: "x".repeat(500 * 1024) } }));
    const { status, body } = await inProcess<{ error: string }>("/v1/events", jsonPost(chunked(JSON.stringify(events))));
    expect(status).toBe(413);
    expect(body.error).toMatch(/3 MiB/);
    expect((await inProcess<Page<unknown>>(`/v1/events?name=${encodeURIComponent(name)}`)).body.data).toEqual([]);
  });

  it("POST /v1/functions/:id/invoke refuses data over an event's 512 KiB with a 413, declared or chunked", async () => {
    const key = uniqueKey("invoke-too-big");
    const text = JSON.stringify({ data: { key, blob: "x".repeat(1024 * 1024) } });
    for (const body of [text, chunked(text)]) {
      const { status, body: answer } = await inProcess<{ error: string }>("/v1/functions/fanout-a/invoke", jsonPost(body));
      expect(status).toBe(413);
      expect(answer.error).toMatch(/512 KiB/);
    }
    // Under the limit, the same request starts its run.
    const within = JSON.stringify({ data: { key, blob: "x".repeat(400 * 1024) } });
    expect((await inProcess<{ data: { run_id: string } }>("/v1/functions/fanout-a/invoke", jsonPost(within))).status).toBe(201);
  });
});

describe("POST /v1/runs/:id/rerun", () => {
  it("starts a new run from the same event; from a step, it reuses the steps that ended before it", async () => {
    const key = uniqueKey("rerun");
    const [eventId] = await sendEvents({ name: "test/counted", data: { key, sleep: "10ms" } });
    await finishedRuns(eventId!);
    const original = await runIdOf(eventId!);

    const fromB = await json<{ data: { run_id: string } }>(`/v1/runs/${original}/rerun`, post({ from_step: "b" }));
    expect(fromB.status).toBe(201);
    const rerun = await eventually(async () => {
      const found = await getRun(fromB.body.data.run_id);
      return found.status === "Completed" ? found : undefined;
    });
    expect(rerun).toMatchObject({ output: "abc", event_id: eventId });
    // a (and the sleep) came from the first run; b and c ran again.
    expect([await effectCount(`${key}:a`), await effectCount(`${key}:b`), await effectCount(`${key}:c`)]).toEqual([1, 2, 2]);

    const whole = await json<{ data: { run_id: string } }>(`/v1/runs/${original}/rerun`, { method: "POST" });
    await eventually(async () => ((await getRun(whole.body.data.run_id)).status === "Completed" ? true : undefined));
    expect(await effectCount(`${key}:a`)).toBe(2);
    // Both re-runs are runs of the same event.
    await finishedRuns(eventId!, 3);

    expect((await json<{ error: string }>(`/v1/runs/${original}/rerun`, post({ from_step: "nope" }))).body.error).toMatch(/no step "nope"/);
    expect((await json(`/v1/runs/01ABCDEFGHJKMNPQRSTVWXYZ00/rerun`, post({}))).status).toBe(404);
  });
});
