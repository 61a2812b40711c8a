import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import worker from "./worker.ts";

// Every generated request is bad input: each must get a 4xx with a JSON error, and nothing may be
// stored. Valid-looking names in generated events start with "fuzz/" (or "inngest/fuzz/", a reserved
// name), so a leak would show in D1. An empty array is not bad input: it is no events (events.test.ts).
const statusCounts = new Map<number, number>();

afterAll(() => {
  const counts = [...statusCounts.entries()].sort(([a], [b]) => a - b).map(([status, n]) => `${status}: ${n}`);
  console.log(`fuzz: ${[...statusCounts.values()].reduce((a, b) => a + b, 0)} requests; by status ${counts.join(", ")}`);
});

async function expectJsonClientError(response: Response, what: string): Promise<void> {
  statusCounts.set(response.status, (statusCounts.get(response.status) ?? 0) + 1);
  const text = await response.text();
  expect(response.status, `${what} → ${response.status} ${text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
  expect(response.status, `${what} → ${text.slice(0, 200)}`).toBeLessThan(500);
  expect(response.headers.get("content-type"), what).toMatch(/application\/json/);
  expect(typeof (JSON.parse(text) as { error?: unknown }).error, what).toBe("string");
}

/** The Worker's own fetch handler, called directly: the whole HTTP boundary without a socket. */
function request(path: string, init?: RequestInit): Promise<Response> {
  const req = new Request(`http://stepflare.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>;
  return Promise.resolve(worker.fetch!(req, env, createExecutionContext()));
}

async function storedFuzzEvents(): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE name LIKE 'fuzz%' OR name LIKE 'inngest/fuzz%'").first<{ n: number }>();
  return row?.n ?? 0;
}

const fuzzName = fc.string({ minLength: 1, maxLength: 20 }).map((s) => `fuzz/${s}`);
const notAnObject = fc.oneof(fc.array(fc.integer(), { maxLength: 3 }), fc.string({ maxLength: 10 }), fc.integer(), fc.boolean());
const validEvent = fc.record({ name: fuzzName, data: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }) });

/** A JSON value that is not a valid event, in one of the ways senders get it wrong. */
const invalidEvent = fc.oneof(
  fc.record({ name: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.object({ maxDepth: 1 })) }),
  fc.record({ data: fc.object({ maxDepth: 1 }) }),
  fc.constantFrom({ name: "" }, { name: `fuzz/${"x".repeat(300)}` }),
  fc.record({ name: fuzzName, data: notAnObject }),
  fc.record({ name: fuzzName, ts: fc.oneof(fc.integer({ max: -1 }), fc.string({ maxLength: 8 }), fc.double({ min: 0.1, max: 1e12, noInteger: true })) }),
  fc.record({ name: fuzzName, user: notAnObject }),
  fc.record({ name: fuzzName, v: fc.oneof(fc.integer(), fc.object({ maxDepth: 1 }), fc.constant("v".repeat(300))) }),
  fc.record({ name: fuzzName, id: fc.oneof(fc.constant(""), fc.constant("i".repeat(300)), fc.integer()) }),
  // Reserved for the engine.
  fc.record({ name: fuzzName.map((name) => `inngest/${name}`), data: fc.object({ maxDepth: 1 }) }),
);

const deepArray = fc.integer({ min: 500, max: 50_000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth));
const hugeBody = JSON.stringify([{ name: "fuzz/huge", data: { blob: "x".repeat(3 * 1024 * 1024) } }]);
const hugeEvent = JSON.stringify({ name: "fuzz/big-event", data: { blob: "y".repeat(520 * 1024) } });
const tooMany = JSON.stringify(Array.from({ length: 5001 }, () => ({ name: "fuzz/many" })));

/** A request body with a content type under which it must be refused. */
const badEventRequest: fc.Arbitrary<{ body: BodyInit; contentType?: string }> = fc.oneof(
  { weight: 8, arbitrary: invalidEvent.map((event) => ({ body: JSON.stringify(event) })) },
  { weight: 4, arbitrary: fc.tuple(fc.array(validEvent, { maxLength: 3 }), invalidEvent, fc.array(validEvent, { maxLength: 3 })).map(([a, bad, b]) => ({ body: JSON.stringify([...a, bad, ...b]) })) },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.boolean()).map((v) => ({ body: JSON.stringify(v) })) },
  { weight: 3, arbitrary: fc.string().filter((s) => !isJson(s)).map((body) => ({ body })) },
  { weight: 1, arbitrary: deepArray.map((body) => ({ body })) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => ({ body: new Uint8Array([0x7b, 0x22, 0xff, ...bytes, 0xc3, 0x28, 0x7d]) })) },
  { weight: 2, arbitrary: fc.tuple(validEvent, fc.constantFrom("application/xml", "multipart/form-data; boundary=x", "application/octet-stream", "image/png", "text/html")).map(([event, contentType]) => ({ body: JSON.stringify(event), contentType })) },
  { weight: 1, arbitrary: fc.constantFrom(hugeBody, hugeEvent, tooMany).map((body) => ({ body })) },
);

const hostileKey = fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom("../../etc/passwd", "..%2F..%2Fv1", "' OR 1=1 --", "key; DROP TABLE events", "%00"));
const hostileId = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.stringMatching(/^[0-9a-f]{32}$/),
  fc.constantFrom("../../etc/passwd", "..", "' OR '1'='1", "1; DROP TABLE runs; --", "%", "\u0000", "x".repeat(5000), "<script>alert(1)</script>"),
);

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A body `POST /v1/cancellations` must refuse: wrong types, unknown functions, bad times and expressions. */
const badCancellation = fc.oneof(
  fc.record({ function_id: fc.oneof(fc.integer(), fc.constant(""), fc.constant(null), fc.constant("f".repeat(300))) }),
  fc.record({ function_id: fuzzName }),
  fc.record({ function_id: fc.constant("counted"), started_after: fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ max: -1 }), fc.boolean()) }),
  fc.record({ function_id: fc.constant("counted"), if: fc.constantFrom("event.data ==", "))", "1 +", "") }),
  fc.record({ function_id: fc.constant("counted"), extra: fc.jsonValue({ maxDepth: 1 }) }),
  notAnObject,
);

describe("fuzzing the HTTP boundary", { timeout: 300_000 }, () => {
  it("answers 500 bad bulk cancellations with a JSON 4xx and records none", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(badCancellation.map((body) => JSON.stringify(body)), fc.string().filter((text) => !isJson(text))), async (body) => {
        const response = await request("/v1/cancellations", { method: "POST", headers: { "content-type": "application/json" }, body });
        await expectJsonClientError(response, `POST /v1/cancellations ${body.slice(0, 80)}`);
      }),
      { numRuns: 500 },
    );
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM cancellations").first<{ n: number }>())?.n).toBe(0);
  });

  it("answers 6,000 bad event requests with a JSON 4xx and stores nothing", async () => {
    await fc.assert(
      fc.asyncProperty(badEventRequest, hostileKey, async ({ body, contentType }, key) => {
        const response = await request(`/e/${encodeURIComponent(key)}`, { method: "POST", headers: { "content-type": contentType ?? "application/json" }, body });
        await expectJsonClientError(response, `POST /e/${key}`);
      }),
      { numRuns: 6000 },
    );
    expect(await storedFuzzEvents()).toBe(0);
  });

  it("answers 4,000 requests for unknown or hostile ids on every /v1 route with a JSON 4xx", async () => {
    const route = fc.constantFrom(
      (id: string) => ["GET", `/v1/events/${id}`],
      (id: string) => ["GET", `/v1/events/${id}/runs`],
      (id: string) => ["GET", `/v1/runs/${id}`],
      (id: string) => ["DELETE", `/v1/runs/${id}`],
      (id: string) => [["PUT", "PATCH", "POST"][id.length % 3]!, `/v1/runs/${id}`],
      (id: string) => ["GET", `/v1/cancellations/${id}`],
      (id: string) => ["POST", `/v1/functions/${id}/trigger`],
    );
    await fc.assert(
      // "." and ".." are path segments a URL resolves away (/v1/events/../runs is GET /v1/runs, a listing), not ids.
      fc.asyncProperty(route, hostileId.filter((id) => id !== "." && id !== ".."), async (path, id) => {
        const [method, url] = path(encodeURIComponent(id));
        const response = await request(url!, { method });
        await expectJsonClientError(response, `${method} ${url!.slice(0, 80)}`);
      }),
      { numRuns: 4000 },
    );
    // Still serving.
    expect((await request("/v1/functions")).status).toBe(200);
  });
});
