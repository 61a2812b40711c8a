import { monotonicFactory, ulid } from "ulidx";

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
  // Its monotonic factory increments the random part after the first.
  const next = monotonicFactory(drawing(parsed.random));
  return () => next(parsed.millis);
}

/**
 * The ULID of `millis` whose random part is `bytes` (10 bytes, 80 bits), the same every time.
 *
 * @example
 * seededUlid(1764000000000, sha256(key).slice(0, 10)); // "01KB…"
 */
export function seededUlid(millis: number, bytes: Uint8Array): string {
  return ulid(millis, drawing(fiveBitGroups(bytes)));
}

/** A PRNG making ulidx draw `groups` as a ULID's random part: it draws the 16 characters last to first, each as floor(prng() * 32). */
function drawing(groups: number[]): () => number {
  let drawn = 0;
  return () => (groups[15 - (drawn++ % 16)]! + 0.5) / 32;
}

function parseSeed(seed: string | null | undefined): { millis: number; random: number[] } | null {
  const match = /^(\d{1,15}),([A-Za-z0-9+/]{14}==)$/.exec(seed ?? "");
  if (!match) return null;
  const millis = Number(match[1]);
  const bytes = Uint8Array.from(atob(match[2]!), (c) => c.charCodeAt(0));
  if (bytes.length !== 10 || millis > 2 ** 48 - 1) return null;
  return { millis, random: fiveBitGroups(bytes) };
}

/** 10 bytes (80 bits) as the 16 five-bit groups of a ULID's random part, first bit first. */
function fiveBitGroups(bytes: Uint8Array): number[] {
  const groups: number[] = [];
  for (let bit = 0; bit < 80; bit += 5) {
    let value = 0;
    for (let b = bit; b < bit + 5; b++) value = (value << 1) | ((bytes[b >> 3]! >> (7 - (b & 7))) & 1);
    groups.push(value);
  }
  return groups;
}
