import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { capacity, capacityTable, formatCapacityTable, formatCount, LIMITS, SECONDS_PER_MONTH, spreadStatements } from "./capacity.mjs";

const month = 30 * 86_400;

describe("capacity", () => {
  it("divides each limit by what a unit costs it, over a 30-day month", () => {
    const result = capacity({ perUnit: { d1Bytes: 2000, d1Statements: 3, queueMessages: 1 }, retentionDays: 30, shards: 1 });
    expect(SECONDS_PER_MONTH).toBe(month);
    expect(result.bounds.storage).toBeCloseTo(10e9 / 2000);
    expect(result.bounds.pruning).toBe(500 * 60 * 24 * 30);
    expect(result.bounds.thread).toBeCloseTo((1000 / 3) * month);
    expect(result.bounds.queue).toBe(5000 * month);
    expect(result).toMatchObject({ binds: "storage", fits: result.bounds.storage, shards: 1, retentionDays: 30, queues: 1 });
    // The thread would bind first once a statement took as long as the thread bound is above storage's.
    expect(result.threadBindsAtMs).toBeCloseTo(result.bounds.thread / result.bounds.storage);
  });

  it("holds a shorter retention's units for fewer days, so more of them fit a month", () => {
    const perUnit = { d1Bytes: 2000, d1Statements: 3, queueMessages: 1 };
    const week = capacity({ perUnit, retentionDays: 7, shards: 1 });
    const thirty = capacity({ perUnit, retentionDays: 30, shards: 1 });
    expect(week.bounds.storage / thirty.bounds.storage).toBeCloseTo(30 / 7);
    expect(week.bounds.thread).toBe(thirty.bounds.thread);
  });

  it("names the pruning when rows would come faster than the tick deletes them", () => {
    const result = capacity({ perUnit: { d1Bytes: 100, d1Statements: 3, queueMessages: 1 }, retentionDays: 7, shards: 1 });
    expect(result.binds).toBe("pruning");
  });

  it("names one database's thread when a unit takes many statements", () => {
    const result = capacity({ perUnit: { d1Bytes: 100, d1Statements: 500, queueMessages: 1 }, retentionDays: 7, shards: 1 });
    expect(result.binds).toBe("thread");
    expect(result.threadBindsAtMs).toBeLessThan(1);
  });

  it("names the queue once enough shards carry the rest, and lifts it with more queues", () => {
    const perUnit = { d1Bytes: 10, d1Statements: 0.01, queueMessages: 1 };
    const limits = { ...LIMITS, pruneRowsPerMinute: 1e9 };
    const one = capacity({ perUnit, retentionDays: 1, shards: 1000, limits });
    expect(one.binds).toBe("queue");
    const four = capacity({ perUnit, retentionDays: 1, shards: 1000, queues: 4, limits });
    expect(four.bounds.queue).toBe(4 * one.bounds.queue);
  });

  it("fits no more than any bound, and never fewer with more shards", () => {
    const positive = fc.double({ min: 0.001, max: 1e6, noNaN: true });
    fc.assert(
      fc.property(positive, positive, positive, fc.integer({ min: 1, max: 365 }), fc.integer({ min: 1, max: 64 }), (d1Bytes, d1Statements, queueMessages, retentionDays, shards) => {
        const perUnit = { d1Bytes, d1Statements, queueMessages };
        const result = capacity({ perUnit, retentionDays, shards });
        for (const bound of Object.values(result.bounds)) expect(result.fits).toBeLessThanOrEqual(bound);
        expect(capacity({ perUnit, retentionDays, shards: shards + 1 }).fits).toBeGreaterThanOrEqual(result.fits);
      }),
    );
  });

  it("refuses a figure that is not a positive number, naming it", () => {
    expect(() => capacity({ perUnit: { d1Bytes: 0, d1Statements: 3, queueMessages: 1 }, retentionDays: 7, shards: 1 })).toThrow(/d1Bytes must be a positive number/);
    expect(() => capacity({ perUnit: { d1Bytes: 10, d1Statements: 3, queueMessages: 1 }, retentionDays: 7, shards: Number.NaN })).toThrow(/shards/);
  });
});

describe("capacityTable", () => {
  const alone = { d1Bytes: 3000, d1Statements: 4, queueMessages: 1 };
  const batched = { d1Bytes: 2900, d1Statements: 1.5, queueMessages: 1 };

  it("gives a row per payload, retention and shard count, with the thread bound of both ways of sending", () => {
    const rows = capacityTable({ measured: { "1 KiB": { alone, batched } }, shards: [1, 4, 16], retentionDays: [7, 30] });
    expect(rows.map((row) => [row.retentionDays, row.shards])).toEqual([[7, 1], [7, 4], [7, 16], [30, 1], [30, 4], [30, 16]]);
    const [first] = rows;
    expect(first!.thread).toBeCloseTo((1000 / 4) * month);
    expect(first!.threadBatched).toBeCloseTo((1000 / 1.5) * month);
    expect(first!.storage).toBeCloseTo((10e9 / 3000) * (30 / 7));
    expect(first!.binds).toBe("storage");
    // On 16 shards a request of 100 events writes its insert and its mark on each shard: 2 × 15 statements more per 100 events.
    expect(rows[2]!.threadBatched).toBeCloseTo(((16 * 1000) / (1.5 + 0.3)) * month);
    expect(rows[2]!.thread).toBeCloseTo(((16 * 1000) / 4) * month);
  });

  it("prints as a Markdown table", () => {
    const rows = capacityTable({ measured: { "1 KiB": { alone, batched } }, shards: [1], retentionDays: [30] });
    expect(formatCapacityTable(rows).split("\n")).toEqual([
      "| payload | retention | shards | storage | pruning | thread (sent alone) | thread (100 a request) | queue (one) | binds first | thread first from |",
      "|---|---|---|---|---|---|---|---|---|---|",
      "| 1 KiB | 30 d | 1 | 3.3 M | 22 M | 648 M | 1.7 B | 13 B | storage | 194 ms |",
    ]);
  });
});

describe("spreadStatements", () => {
  it("adds a request's insert and mark on every further shard, shared by its 100 events", () => {
    expect(spreadStatements({ d1Bytes: 1, d1Statements: 2.52, queueMessages: 1 }, 1).d1Statements).toBeCloseTo(2.52);
    expect(spreadStatements({ d1Bytes: 1, d1Statements: 2.52, queueMessages: 1 }, 4).d1Statements).toBeCloseTo(2.58);
  });
});

describe("formatCount", () => {
  it("reads as thousands, millions and billions", () => {
    expect([950, 12_345, 4_321_000, 43_210_000, 1_234_000_000, 12_960_000_000].map(formatCount)).toEqual(["950", "12 k", "4.3 M", "43 M", "1.2 B", "13 B"]);
  });
});
