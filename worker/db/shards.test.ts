import { monotonicFactory, ulid } from "ulidx";
import { describe, expect, it } from "vitest";
import { mergeNewestFirst, shardIndex, ShardWrites } from "./shards.ts";

/** A seeded generator (a 32-bit LCG), so the ids below are the same at every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** How many of `keys` land on each of `count` shards. */
function shares(keys: string[], count: number): number[] {
  const counts = new Array<number>(count).fill(0);
  for (const key of keys) counts[shardIndex(key, count)]!++;
  return counts;
}

describe("shardIndex", () => {
  it("places a key where it placed it before: FNV-1a over the key, modulo the count", () => {
    // Pinned: a change to the hash would lose every row stored under the old placement.
    expect([2, 3, 4, 7].map((count) => shardIndex("01JZ8X3V9Q4T7M2K5N6P8R0S1W", count))).toEqual([0, 2, 0, 0]);
    expect([2, 3, 4, 7].map((count) => shardIndex("orders/created", count))).toEqual([1, 0, 3, 4]);
    expect([2, 3, 4, 7].map((count) => shardIndex("", count))).toEqual([1, 1, 1, 2]);
  });

  it("answers a whole number within range, the same each time, and 0 for one shard", () => {
    const random = seededRandom(7);
    for (let i = 0; i < 500; i++) {
      const key = ulid(1_750_000_000_000 + i, random);
      expect(shardIndex(key, 1)).toBe(0);
      for (const count of [2, 3, 5, 16]) {
        const index = shardIndex(key, count);
        expect(Number.isInteger(index) && index >= 0 && index < count).toBe(true);
        expect(shardIndex(key, count)).toBe(index);
      }
    }
  });

  it("gives each of 3 shards a share of 3,000 ULIDs within ±20%, spread over time or minted in one millisecond", () => {
    const random = seededRandom(42);
    const spread = Array.from({ length: 3_000 }, (_, i) => ulid(1_750_000_000_000 + i * 37, random));
    // A burst: ulidx's monotonic ids in one millisecond differ only in their last characters.
    const next = monotonicFactory(seededRandom(43));
    const burst = Array.from({ length: 3_000 }, () => next(1_750_000_000_000));
    for (const keys of [spread, burst]) {
      for (const share of shares(keys, 3)) {
        expect(share).toBeGreaterThanOrEqual(800);
        expect(share).toBeLessThanOrEqual(1_200);
      }
    }
  });
});

describe("mergeNewestFirst", () => {
  const keyOf = (row: { at: number; id: string }) => row;

  it("orders the shards' pages by time, newest first, then by id, and cuts to the limit", () => {
    const pages = [
      [
        { at: 30, id: "b" },
        { at: 10, id: "a" },
      ],
      [
        { at: 30, id: "c" },
        { at: 20, id: "z" },
      ],
      [],
      [{ at: 30, id: "a" }],
    ];
    expect(mergeNewestFirst(pages, keyOf, 10)).toEqual([
      { at: 30, id: "c" },
      { at: 30, id: "b" },
      { at: 30, id: "a" },
      { at: 20, id: "z" },
      { at: 10, id: "a" },
    ]);
    expect(mergeNewestFirst(pages, keyOf, 2)).toEqual([
      { at: 30, id: "c" },
      { at: 30, id: "b" },
    ]);
    expect(mergeNewestFirst([[], []], keyOf, 5)).toEqual([]);
  });
});

describe("ShardWrites", () => {
  // Only grouping and counting here, with stand-in shards and statements that nothing is called on; the
  // writes themselves go to real D1 shards in test/shardsInfra.test.ts.
  const shardA = {} as D1Database;
  const shardB = {} as D1Database;
  const statement = () => ({}) as D1PreparedStatement;

  it("counts the statements added for every shard, and adds nothing for an empty add", () => {
    const writes = new ShardWrites().add(shardA, statement(), statement()).add(shardB, statement()).add(shardA);
    expect(writes.size).toBe(3);
    expect(new ShardWrites().size).toBe(0);
  });

  it("takes in another's statements, shard by shard", () => {
    const first = new ShardWrites().add(shardA, statement());
    const second = new ShardWrites().add(shardA, statement()).add(shardB, statement(), statement());
    expect(first.addAll(second).size).toBe(4);
    expect(second.size).toBe(3);
  });
});
