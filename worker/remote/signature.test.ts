import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import canonicalize from "canonicalize"; // what the SDK canonicalizes with (helpers/net.js)
import fc from "fast-check";
import { Inngest, InngestCommHandler } from "inngest";
import { serve } from "inngest/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  canonicalJson,
  checkBearer,
  hashedSigningKey,
  signRequest,
  verifyResponseSignature,
  verifySignature,
} from "./signature.ts";

const KEY = "signkey-test-8f2b8c1e0e4a4d6f9b3c2a1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f";
const FALLBACK = "signkey-test-1111111111111111111111111111111111111111111111111111111111111111";
const OTHER = "signkey-test-2222222222222222222222222222222222222222222222222222222222222222";
const now = () => Math.floor(Date.now() / 1000);

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const client = new Inngest({
  id: "sig-test",
  isDev: false,
  signingKey: KEY,
  signingKeyFallback: FALLBACK,
  baseUrl: "http://127.0.0.1:9", // nothing listens: the SDK must not need the executor for these calls
  logger: silent,
});
const hello = client.createFunction({ id: "hello", triggers: [{ event: "demo/hello" }] }, async ({ event }) => ({
  ok: true,
  got: event.data,
}));

/** The SDK's own check, exactly as serve() runs it (the body JSON-parsed first, "" when empty). */
async function sdkAccepts(header: string, body: string): Promise<boolean> {
  const handler = new InngestCommHandler({
    frameworkName: "test",
    client,
    functions: [],
    handler: () => {
      throw new Error("validateSignature reads no request");
    },
  });
  const { validateSignature } = handler as unknown as {
    validateSignature(sig: string, body: unknown): Promise<{ success: boolean }>;
  };
  return (await validateSignature.call(handler, header, body === "" ? "" : JSON.parse(body))).success;
}

/** One of the SDK's internal modules: not in its package exports, and typed without these helpers. */
async function sdkHelpers<T>(file: string): Promise<T> {
  return (await import(/* @vite-ignore */ new URL(`../../node_modules/inngest/helpers/${file}`, import.meta.url).href)) as T;
}
const { signDataWithKey } = await sdkHelpers<{
  signDataWithKey(data: unknown, signingKey: string, ts: string, logger: typeof silent): Promise<string>;
}>("net.js");
const { hashSigningKey } = await sdkHelpers<{ hashSigningKey(signingKey: string): string }>("strings.js");

async function sdkSign(body: string, key: string, t: number): Promise<string> {
  return `t=${t}&s=${await signDataWithKey(body === "" ? "" : JSON.parse(body), key, String(t), silent)}`;
}

/** A double from its IEEE 754 bits, as RFC 8785 appendix B lists them. */
function double(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

describe("canonicalJson", () => {
  it("writes RFC 8785's number examples (appendix B)", () => {
    const examples: [string, string][] = [
      ["0000000000000000", "0"],
      ["8000000000000000", "0"], // -0
      ["0000000000000001", "5e-324"],
      ["8000000000000001", "-5e-324"],
      ["7fefffffffffffff", "1.7976931348623157e+308"],
      ["ffefffffffffffff", "-1.7976931348623157e+308"],
      ["4340000000000000", "9007199254740992"],
      ["c340000000000000", "-9007199254740992"],
      ["4430000000000000", "295147905179352830000"],
      ["44b52d02c7e14af5", "9.999999999999997e+22"],
      ["44b52d02c7e14af6", "1e+23"],
      ["44b52d02c7e14af7", "1.0000000000000001e+23"],
      ["444b1ae4d6e2ef4e", "999999999999999700000"],
      ["444b1ae4d6e2ef4f", "999999999999999900000"],
      ["444b1ae4d6e2ef50", "1e+21"],
      ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
      ["3eb0c6f7a0b5ed8d", "0.000001"],
      ["41b3de4355555553", "333333333.3333332"],
      ["41b3de4355555554", "333333333.33333325"],
      ["41b3de4355555555", "333333333.3333333"],
      ["41b3de4355555556", "333333333.3333334"],
      ["41b3de4355555557", "333333333.33333343"],
      ["becbf647612f3696", "-0.0000033333333333333333"],
      ["43143ff3c1cb0959", "1424953923781206.2"],
    ];
    for (const [bits, text] of examples) expect(canonicalJson(double(bits)), bits).toBe(text);
    expect(canonicalJson([1e21, 1e-7, 1e20, -0])).toBe("[1e+21,1e-7,100000000000000000000,0]");
  });

  it("refuses the numbers JCS has no form for", () => {
    for (const bits of ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"]) {
      expect(() => canonicalJson({ n: double(bits) })).toThrow(TypeError);
    }
    expect(() => canonicalJson(1n)).toThrow(TypeError);
  });

  it("writes RFC 8785's main example (§3.2.2)", () => {
    const input =
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
      ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}';
    expect(canonicalJson(JSON.parse(input))).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it("sorts keys by UTF-16 code units (§3.2.3), so an emoji's surrogates sort before U+FB33", () => {
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis",
    };
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it("nests, and drops what JSON.stringify drops", () => {
    expect(canonicalJson({ z: { b: [undefined, 2], a: undefined }, a: new Date(0), " ": new Number(3) })).toBe(
      '{" ":3,"a":"1970-01-01T00:00:00.000Z","z":{"b":[null,2]}}',
    );
  });

  it("agrees with the canonicalize package the SDK uses, for every JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).toBe(canonicalize(value));
      }),
      { numRuns: 500 },
    );
  });
});

describe("signRequest and verifySignature against the SDK", () => {
  // Key order and whitespace that the canonical form changes.
  const body = JSON.stringify({ steps: {}, event: { name: "demo/hello", data: { b: 2, a: "é" } }, ctx: { run_id: "r1" } }, null, 2);

  it("sends the canonical body, and the SDK accepts what it signs", async () => {
    const signed = await signRequest(body, KEY);
    expect(signed.body).toBe(canonicalJson(JSON.parse(body)));
    expect(signed.signature).toMatch(/^t=\d+&s=[0-9a-f]{64}$/);
    expect(await sdkAccepts(signed.signature, signed.body)).toBe(true);
    // The SDK re-canonicalizes, so it accepts the same signature over the original bytes too.
    expect(await sdkAccepts(signed.signature, body)).toBe(true);
  });

  it("signs an empty body as just t, as the SDK does for GET", async () => {
    const signed = await signRequest(undefined, KEY, 1_700_000_000);
    expect(signed.body).toBe("");
    expect(signed.signature).toBe(await sdkSign("", KEY, 1_700_000_000));
    expect(await sdkAccepts((await signRequest("", KEY)).signature, "")).toBe(true);
  });

  it("matches the SDK's signature for every JSON body", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.integer({ min: 0, max: 4_000_000_000 }), async (value, t) => {
        const text = JSON.stringify(value);
        expect((await signRequest(text, KEY, t)).signature).toBe(await sdkSign(text, KEY, t));
      }),
      { numRuns: 200 },
    );
  });

  it("accepts what the SDK signs, with the signing key or the fallback", async () => {
    const t = now();
    expect(await verifySignature(await sdkSign(body, KEY, t), body, [KEY, FALLBACK])).toEqual({ valid: true, signingKey: KEY });
    expect(await verifySignature(await sdkSign(body, FALLBACK, t), body, [KEY, FALLBACK])).toEqual({
      valid: true,
      signingKey: FALLBACK,
    });
    expect(await verifySignature(await sdkSign("", KEY, t), undefined, [KEY])).toEqual({ valid: true, signingKey: KEY });
  });

  it("both sides refuse a tampered body, a wrong key and a stale or future timestamp", async () => {
    const tampered = body.replace('"b": 2', '"b": 3');
    const { signature } = await signRequest(body, KEY);
    expect(await sdkAccepts(signature, tampered)).toBe(false);
    expect(await verifySignature(signature, tampered, [KEY])).toEqual({ valid: false, reason: "mismatch" });
    expect(await verifySignature(await sdkSign(body, OTHER, now()), body, [KEY, FALLBACK])).toEqual({ valid: false, reason: "mismatch" });

    for (const skew of [-301, 301]) {
      const stale = await signRequest(body, KEY, now() + skew);
      expect(await sdkAccepts(stale.signature, body)).toBe(false);
      expect(await verifySignature(stale.signature, body, [KEY])).toEqual({ valid: false, reason: "expired" });
    }
    const edge = await signRequest(body, KEY, 1_700_000_000);
    expect(await verifySignature(edge.signature, body, [KEY], 1_700_000_300)).toMatchObject({ valid: true });
    expect(await verifySignature(edge.signature, body, [KEY], 1_700_000_301)).toMatchObject({ reason: "expired" });
  });

  it("says why a header is refused before any MAC", async () => {
    const { signature } = await signRequest(body, KEY);
    expect(await verifySignature(undefined, body, [KEY])).toEqual({ valid: false, reason: "missing_signature" });
    expect(await verifySignature(signature, body, ["", "signkey-test-"])).toEqual({ valid: false, reason: "no_signing_key" });
    expect(await verifySignature(signature, "{not json", [KEY])).toEqual({ valid: false, reason: "invalid_body" });
    const deep = `${"[".repeat(200_000)}${"]".repeat(200_000)}`;
    expect(await verifySignature(signature, deep, [KEY])).toEqual({ valid: false, reason: "invalid_body" });
    for (const header of ["s=abc", `t=${now()}`, `t=${now()}x&s=00`, "garbage"]) {
      expect(await verifySignature(header, body, [KEY]), header).toEqual({ valid: false, reason: "malformed_signature" });
    }
  });

  it("MACs a body that parses to a JSON string as the bare string, as the SDK does", async () => {
    const signed = await signRequest('"hello"', KEY, 1_700_000_000);
    expect(signed.body).toBe('"hello"');
    expect(signed.signature).toBe(await sdkSign('"hello"', KEY, 1_700_000_000));
    // Not the MAC of the quoted text that goes on the wire.
    expect(signed.signature).not.toBe(`t=1700000000&s=${await signDataWithKey('"hello"', KEY, "1700000000", silent)}`);
  });

  it("refuses to sign a body that is not JSON", async () => {
    await expect(signRequest("{", KEY)).rejects.toThrow(SyntaxError);
  });
});

describe("hashedSigningKey and checkBearer", () => {
  it("equals the SDK's hashSigningKey, non-hex keys included", async () => {
    for (const key of [KEY, FALLBACK, "signkey-prod-ABCDEF0123", "signkey-branch-abc", "signkey-test-zz9x-1", "nohex", "a", ""]) {
      expect(await hashedSigningKey(key), key).toBe(hashSigningKey(key));
    }
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("", "signkey-test-", "signkey-prod-", "signkey-my_env-"),
        fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-fA-F]{0,70}$/), fc.stringMatching(/^[0-9a-zA-Z_. -]{0,20}$/)),
        async (prefix, rest) => {
          expect(await hashedSigningKey(prefix + rest)).toBe(hashSigningKey(prefix + rest));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("accepts the Bearer token the SDK sends for either key, and nothing else", async () => {
    expect(await checkBearer(`Bearer ${hashSigningKey(KEY)}`, [KEY, FALLBACK])).toBe(true);
    expect(await checkBearer(`Bearer ${hashSigningKey(FALLBACK)}`, [KEY, FALLBACK])).toBe(true);
    expect(await checkBearer(`Bearer ${hashSigningKey(OTHER)}`, [KEY, FALLBACK])).toBe(false);
    expect(await checkBearer(`Bearer ${KEY}`, [KEY])).toBe(false); // the raw key is not the token
    expect(await checkBearer("Bearer ", [KEY, ""])).toBe(false);
    expect(await checkBearer(undefined, [KEY])).toBe(false);
    expect(await checkBearer(`Bearer ${hashSigningKey(KEY)}`, ["", "signkey-test-"])).toBe(false);
  });
});

describe("end to end: serve() from inngest/node in cloud mode", () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer(serve({ client, functions: [hello] }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/inngest`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("authenticates a signed introspection GET and refuses an unsigned one", async () => {
    const unsigned = await fetch(url);
    expect(unsigned.status).toBe(401);

    const { signature } = await signRequest(undefined, KEY);
    const res = await fetch(url, { headers: { "x-inngest-signature": signature } });
    const text = await res.text();
    const introspection = JSON.parse(text) as { authentication_succeeded?: boolean; signing_key_hash?: string };
    expect(res.status).toBe(200);
    expect(introspection.authentication_succeeded).toBe(true);
    expect(introspection.signing_key_hash).toBe((await hashedSigningKey(KEY)).slice("signkey-test-".length, "signkey-test-".length + 12));

    // The SDK signs its response over the raw text it sends, not a canonical form.
    const responseSignature = res.headers.get("x-inngest-signature");
    expect(await verifyResponseSignature(responseSignature, text, [KEY])).toEqual({ valid: true, signingKey: KEY });
    expect(await verifyResponseSignature(responseSignature, `${text} `, [KEY])).toMatchObject({ valid: false });
  });

  it("runs a function on a signed call, and refuses the same body MACed without canonicalizing", async () => {
    const call = JSON.stringify(
      {
        version: 1,
        steps: {},
        event: { name: "demo/hello", data: { z: 1, a: [2, 1] }, id: "e1", ts: 1_700_000_000_000, user: {} },
        events: [{ name: "demo/hello", data: { z: 1, a: [2, 1] }, id: "e1", ts: 1_700_000_000_000, user: {} }],
        ctx: { run_id: "run-1", attempt: 0, disable_immediate_execution: false, use_api: false, stack: { stack: [], current: 0 } },
      },
      null,
      2,
    );
    const target = `${url}?fnId=sig-test-hello&stepId=step`;
    const post = (body: string, signature: string) =>
      fetch(target, { method: "POST", body, headers: { "content-type": "application/json", "x-inngest-signature": signature } });

    const signed = await signRequest(call, KEY);
    const res = await post(signed.body, signed.signature);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(JSON.parse(text)).toEqual({ ok: true, got: { z: 1, a: [2, 1] } });
    expect(await verifyResponseSignature(res.headers.get("x-inngest-signature"), text, [KEY])).toMatchObject({ valid: true });

    // What a naive executor would do: HMAC the raw bytes it sends.
    const t = now();
    const rawMac = await signDataWithKey(call, KEY, String(t), silent); // a string is MACed as is
    const naive = await post(call, `t=${t}&s=${rawMac}`);
    expect(naive.status).toBe(401);
    await naive.text();
  });
});
