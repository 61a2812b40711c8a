import { decodeTime, isValid } from "ulidx";
import { describe, expect, it } from "vitest";
import { eventIdSource } from "./eventIds.ts";

describe("eventIdSource", () => {
  it("derives the same ULIDs from the same Inngest seed, in order, at the seed's time", () => {
    const seed = "1795620871669,AAECAwQFBgcICQ==";
    const first = eventIdSource(seed, 1);
    const again = eventIdSource(seed, 1);
    const ids = [first(), first(), first()];
    expect([again(), again(), again()]).toEqual(ids);
    expect(new Set(ids).size).toBe(3);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) {
      expect(isValid(id)).toBe(true);
      expect(decodeTime(id)).toBe(1795620871669);
    }
    expect(ids[0]!.slice(10)).toBe("000G40R40M30E209");
  });

  it("gives different seeds different ids", () => {
    expect(eventIdSource("1795620871669,AAECAwQFBgcICQ==", 1)()).not.toBe(eventIdSource("1795620871669,AAECAwQFBgcICg==", 1)());
  });

  it.each([null, "", "abc", "1795620871669", "1795620871669,short", "x,AAECAwQFBgcICQ=="])("gives fresh ULIDs of the receipt's millisecond, in order, for a missing or malformed seed (%s)", (seed) => {
    const receivedAt = 1795620871669;
    const next = eventIdSource(seed, receivedAt);
    const ids = [next(), next(), next()];
    for (const id of ids) {
      expect(isValid(id)).toBe(true);
      expect(decodeTime(id)).toBe(receivedAt);
    }
    expect(new Set(ids).size).toBe(3);
    expect([...ids].sort()).toEqual(ids);
  });
});
