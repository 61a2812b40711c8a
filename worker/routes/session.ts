/**
 * The dashboard's session: a token the login form sets as the `stepflare_session` cookie. It is
 * `<expiry ms>.<HMAC-SHA256(signing key, "session:" + expiry)>`, so any isolate verifies it without
 * storage, it never contains the key, and changing `STEPFLARE_SIGNING_KEY` ends every session.
 */

/** The cookie's name. */
export const SESSION_COOKIE = "stepflare_session";

/** How long a login lasts: 12 hours. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

const encoder = new TextEncoder();

/**
 * A session token that expires at `expiresAt` (epoch ms), signed with the signing key.
 *
 * @example
 * const token = await signSession(env.STEPFLARE_SIGNING_KEY, Date.now() + SESSION_TTL_MS);
 */
export async function signSession(signingKey: string, expiresAt: number): Promise<string> {
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(signingKey), encoder.encode(`session:${expiresAt}`));
  return `${expiresAt}.${toBase64Url(new Uint8Array(signature))}`;
}

/**
 * True when `token` was signed with `signingKey` and has not expired at `now`. The signature is
 * checked by `crypto.subtle.verify`, in constant time.
 *
 * @example
 * if (await isValidSession(env.STEPFLARE_SIGNING_KEY, getCookie(c, SESSION_COOKIE), Date.now())) ...
 */
export async function isValidSession(signingKey: string, token: string | undefined, now: number): Promise<boolean> {
  const match = /^([0-9]{1,16})\.([A-Za-z0-9_-]{43})$/.exec(token ?? "");
  if (!match) return false;
  const expiresAt = Number(match[1]);
  if (!(expiresAt > now)) return false;
  const signature = fromBase64Url(match[2]!);
  if (!signature) return false;
  return crypto.subtle.verify("HMAC", await hmacKey(signingKey), signature, encoder.encode(`session:${expiresAt}`));
}

function hmacKey(signingKey: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(signingKey), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array | null {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}
