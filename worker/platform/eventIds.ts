import { monotonicFactory } from "ulidx";

/**
 * Ids for the events of one request that carry none. With Inngest's `x-inngest-event-id-seed`
 * header (`<epoch ms>,<10 random bytes, base64>`, which the `inngest` SDK sends and keeps across its
 * own retries), the ids are ULIDs derived from the seed, so a retried send is recognised as a
 * duplicate; without it they are fresh ULIDs of `receivedAt`'s millisecond, in order (the event
 * log's primary key then orders them by receipt, with no index entry of their own).
 *
 * @example
 * const next = eventIdSource(request.headers.get("x-inngest-event-id-seed"), Date.now());
 * next(); next(); // two ULIDs, in order
 */
export function eventIdSource(seed: string | null | undefined, receivedAt: number): () => string {
  const parsed = parseSeed(seed);
  if (!parsed) {
    const next = monotonicFactory();
    return () => next(receivedAt);
  }
  // ulidx draws the 16 random characters last to first, each as floor(prng() * 32): feed it the
  // seed's 5-bit groups in that order; its monotonic factory increments the random part after.
  let drawn = 0;
  const next = monotonicFactory(() => (parsed.random[15 - (drawn++ % 16)]! + 0.5) / 32);
  return () => next(parsed.millis);
}

function parseSeed(seed: string | null | undefined): { millis: number; random: number[] } | null {
  const match = /^(\d{1,15}),([A-Za-z0-9+/]{14}==)$/.exec(seed ?? "");
  if (!match) return null;
  const millis = Number(match[1]);
  const bytes = Uint8Array.from(atob(match[2]!), (c) => c.charCodeAt(0));
  if (bytes.length !== 10 || millis > 2 ** 48 - 1) return null;
  // 80 bits of entropy are exactly the 16 base32 characters of a ULID's random part.
  const random: number[] = [];
  for (let bit = 0; bit < 80; bit += 5) {
    let value = 0;
    for (let b = bit; b < bit + 5; b++) value = (value << 1) | ((bytes[b >> 3]! >> (7 - (b & 7))) & 1);
    random.push(value);
  }
  return { millis, random };
}
