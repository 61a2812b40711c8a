/**
 * Inngest's request signing, byte for byte as the `inngest` SDK (4.24.0) checks it: the
 * `x-inngest-signature` header on the executor's calls to an app's `serve()` endpoint, and the
 * `Authorization: Bearer` hashed signing key on the app's calls back. Web Crypto only, so it runs in Workers.
 */

/** What `removeSigningKeyPrefix` strips: `signkey-prod-`, `signkey-test-`, `signkey-branch-`. */
const SIGNING_KEY_PREFIX = /^signkey-\w+-/;

/** The SDK refuses a signature whose `t` is more than 5 minutes from its clock, either way. */
export const MAX_SIGNATURE_AGE_SECONDS = 300;

/**
 * RFC 8785 (JCS) canonical JSON: object keys sorted by UTF-16 code units, no whitespace, numbers in
 * ECMAScript `Number.prototype.toString` form, strings escaped as `JSON.stringify` escapes them.
 * Values JSON has no form for are dropped from objects and become `null` in arrays, as in `JSON.stringify`.
 *
 * @example
 * canonicalJson({ b: [1e21, -0], a: "é" }) // '{"a":"é","b":[1e+21,0]}'
 */
export function canonicalJson(value: unknown): string {
  const text = serialize(value);
  if (text === undefined) throw new TypeError(`canonicalJson: a ${typeof value} has no JSON form`);
  return text;
}

function serialize(value: unknown): string | undefined {
  if (typeof value === "object" && value !== null) {
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") value = (value as { toJSON(): unknown }).toJSON();
    if (value instanceof Number || value instanceof String || value instanceof Boolean) value = value.valueOf();
  }
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      // JCS §3.2.2.3 forbids NaN and ±Infinity, which JSON.stringify would quietly write as null.
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} has no JSON form`);
      return JSON.stringify(value); // Number::toString, and -0 as 0
    case "bigint":
      throw new TypeError("canonicalJson: a bigint has no JSON form; convert it to a string or number first");
    case "object":
      break;
    default:
      return undefined; // undefined, functions, symbols
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return `[${value.map((item) => serialize(item) ?? "null").join(",")}]`;
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  // Array.prototype.sort's default order compares UTF-16 code units, which is JCS's key order.
  for (const key of Object.keys(record).sort()) {
    const member = serialize(record[key]);
    if (member !== undefined) members.push(`${JSON.stringify(key)}:${member}`);
  }
  return `{${members.join(",")}}`;
}

/** A request body as sent, and the `x-inngest-signature` value that goes with it. */
export interface SignedRequest {
  /** The canonical JSON of the given body (or `""`): send these bytes, they are what was signed. */
  body: string;
  /** `t=<unix seconds>&s=<hex HMAC-SHA256>`. */
  signature: string;
}

/**
 * Signs a request to an app's `serve()` endpoint as Inngest's executor does, canonicalizing the body.
 *
 * @example
 * const { body, signature } = await signRequest(JSON.stringify(payload), env.INNGEST_SIGNING_KEY);
 * await fetch(appUrl, { method: "POST", body, headers: { "x-inngest-signature": signature } });
 */
export async function signRequest(
  body: string | undefined,
  signingKey: string,
  nowSeconds: number = unixNow(),
): Promise<SignedRequest> {
  if (!Number.isSafeInteger(nowSeconds) || nowSeconds < 0) {
    throw new RangeError(`signRequest: nowSeconds must be a whole number of seconds, got ${nowSeconds}`);
  }
  const form = requestForm(body);
  if (!form) {
    throw new SyntaxError("signRequest: the body is not JSON that can be canonicalized; serve() JSON-parses every body it checks");
  }
  const t = String(nowSeconds);
  return { body: form.canonical, signature: `t=${t}&s=${await hmacHex(signingKey, form.signed + t)}` };
}

/** Why a signature was refused, as a stable code. */
export type SignatureFailure =
  | "no_signing_key"
  | "missing_signature"
  | "malformed_signature"
  | "expired"
  | "invalid_body"
  | "mismatch";

/** The outcome of a signature check: the signing key that matched, or why none did. */
export type SignatureCheck = { valid: true; signingKey: string } | { valid: false; reason: SignatureFailure };

/**
 * Checks an `x-inngest-signature` over a request body as the SDK's `serve()` does: the body is
 * JSON-parsed and canonicalized before the MAC, each key is tried in turn (the signing key, then the
 * fallback), and a `t` more than {@link MAX_SIGNATURE_AGE_SECONDS} from now is refused.
 *
 * @example
 * const check = await verifySignature(req.headers.get("x-inngest-signature"), await req.text(), [key, fallback]);
 * if (!check.valid) return c.json({ error: `bad signature: ${check.reason}` }, 401);
 */
export async function verifySignature(
  header: string | null | undefined,
  body: string | undefined,
  signingKeys: readonly string[],
  nowSeconds: number = unixNow(),
): Promise<SignatureCheck> {
  const form = requestForm(body);
  if (!form) return { valid: false, reason: "invalid_body" };
  return checkSignature(header, form.signed, signingKeys, nowSeconds);
}

/**
 * Checks the `x-inngest-signature` a cloud-mode `serve()` puts on its response. Unlike requests, the SDK
 * signs its response body as the raw text it sends (not re-canonicalized), so the bytes are checked as is.
 *
 * @example
 * const check = await verifyResponseSignature(res.headers.get("x-inngest-signature"), await res.text(), [key]);
 */
export async function verifyResponseSignature(
  header: string | null | undefined,
  rawBody: string,
  signingKeys: readonly string[],
  nowSeconds: number = unixNow(),
): Promise<SignatureCheck> {
  return checkSignature(header, rawBody, signingKeys, nowSeconds);
}

async function checkSignature(
  header: string | null | undefined,
  message: string,
  signingKeys: readonly string[],
  nowSeconds: number,
): Promise<SignatureCheck> {
  const keys = signingKeys.filter((key) => removeSigningKeyPrefix(key) !== "");
  if (keys.length === 0) return { valid: false, reason: "no_signing_key" };
  if (!header) return { valid: false, reason: "missing_signature" };
  const params = new URLSearchParams(header);
  const t = params.get("t") ?? "";
  const mac = params.get("s") ?? "";
  // Stricter than the SDK's parseInt, which would read "12abc" as 12 yet sign "12abc".
  if (!/^\d{1,15}$/.test(t) || mac === "") return { valid: false, reason: "malformed_signature" };
  if (Math.abs(nowSeconds - Number(t)) > MAX_SIGNATURE_AGE_SECONDS) return { valid: false, reason: "expired" };
  for (const key of keys) {
    // t goes into the MAC exactly as written in the header, as the SDK does.
    if (timingSafeEqual(await hmacHex(key, message + t), mac)) return { valid: true, signingKey: key };
  }
  return { valid: false, reason: "mismatch" };
}

/**
 * The canonical bytes of a request body and the text the SDK MACs for it, or `undefined` if it is not JSON
 * (or nests too deep to canonicalize).
 * An empty body is signed as nothing (just `t`). A body that parses to a JSON string is MACed as the string
 * itself, unquoted: the SDK's `signDataWithKey` canonicalizes only non-strings.
 */
function requestForm(body: string | undefined): { canonical: string; signed: string } | undefined {
  if (body === undefined || body === "") return { canonical: "", signed: "" };
  try {
    const parsed: unknown = JSON.parse(body);
    const canonical = canonicalJson(parsed); // may overflow the stack on absurdly deep nesting
    return { canonical, signed: typeof parsed === "string" ? parsed : canonical };
  } catch {
    return undefined;
  }
}

/**
 * The hashed signing key the SDK sends as `Authorization: Bearer …` on its calls to the executor:
 * `signkey-<env>-` followed by the hex SHA-256 of the key part read as hex. Like the SDK (hash.js's
 * `update(key, "hex")`), a key part that is not clean hex is read leniently rather than refused:
 * characters other than letters and digits are dropped, an odd length gets a leading `0`, and a pair
 * that starts with a non-hex letter is the byte 0. An empty key gives `""`.
 *
 * @example
 * await hashedSigningKey("signkey-test-12ab") // "signkey-test-" + hex(sha256([0x12, 0xab]))
 */
export async function hashedSigningKey(signingKey: string): Promise<string> {
  if (!signingKey) return "";
  const prefix = SIGNING_KEY_PREFIX.exec(signingKey)?.[0] ?? "";
  const digest = await crypto.subtle.digest("SHA-256", hexBytesAsHashJsReadsThem(signingKey.slice(prefix.length)));
  return prefix + toHex(digest);
}

/**
 * Whether an `Authorization` header carries the hashed form of one of the signing keys. Every key is
 * compared, in constant time, so the time taken says nothing about which key or how much of it matched.
 *
 * @example
 * if (!(await checkBearer(req.headers.get("authorization"), [key, fallback]))) return c.json({ error: "unauthorized" }, 401);
 */
export async function checkBearer(authorization: string | null | undefined, signingKeys: readonly string[]): Promise<boolean> {
  const token = /^Bearer +(\S+)$/i.exec(authorization ?? "")?.[1];
  if (!token) return false;
  let matched = false;
  for (const key of signingKeys) {
    if (removeSigningKeyPrefix(key) === "") continue;
    // No early return: each key costs the same whether or not an earlier one matched.
    const equal = timingSafeEqual(await hashedSigningKey(key), token);
    matched = matched || equal;
  }
  return matched;
}

function removeSigningKeyPrefix(signingKey: string): string {
  return signingKey.replace(SIGNING_KEY_PREFIX, "");
}

function hexBytesAsHashJsReadsThem(text: string): Uint8Array<ArrayBuffer> {
  let digits = text.replace(/[^a-z0-9]+/gi, "");
  if (digits.length % 2 === 1) digits = `0${digits}`;
  const bytes = new Uint8Array(digits.length / 2);
  // parseInt reads "a" from "az" and NaN from "za"; hash.js's bit operations turn that NaN into 0.
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(digits.slice(2 * i, 2 * i + 2), 16) || 0;
  return bytes;
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

/** HMAC-SHA256 keyed by the signing key's text after its prefix (its ASCII bytes, not hex-decoded). */
async function hmacHex(signingKey: string, message: string): Promise<string> {
  const secret = removeSigningKeyPrefix(signingKey);
  if (secret === "") throw new Error("the signing key is empty after its signkey-<env>- prefix; set the key Inngest gave you");
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    hmacKeys.set(secret, key);
  }
  return toHex(await crypto.subtle.sign("HMAC", await key, new TextEncoder().encode(message)));
}

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Compares two strings in time that depends on their length only. */
function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
