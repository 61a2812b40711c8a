import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileFlowControl, gcra, MISSING_KEY } from "./flow.ts";

/** Starts given to arrivals (sorted times) by GCRA, as a throttle's coordinator gives them one by one. */
function schedule(arrivals: number[], limit: number, period: number, burst: number): number[] {
  let tat = 0;
  return arrivals.map((now) => {
    const next = gcra({ tat, now, limit, period, burst });
    tat = next.tat;
    return next.startAt;
  });
}

describe("gcra", () => {
  it("for any arrivals: starts none early, keeps their order, and at most burst + window / interval in any window", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 120_000 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1000, max: 60_000 }),
        fc.integer({ min: 1, max: 5 }),
        (times, limit, period, burst) => {
          const arrivals = [...times].sort((a, b) => a - b);
          const starts = schedule(arrivals, limit, period, burst);
          const interval = period / limit;
          starts.forEach((start, i) => {
            expect(start).toBeGreaterThanOrEqual(arrivals[i]!);
            if (i > 0) expect(start).toBeGreaterThanOrEqual(starts[i - 1]!);
          });
          // Any window that opens at a start holds at most burst + (window / interval) starts.
          for (const [i, from] of starts.entries()) {
            const inPeriod = starts.slice(i).filter((start) => start < from + period).length;
            expect(inPeriod).toBeLessThanOrEqual(burst + limit);
          }
          // Nothing waits longer than the backlog ahead of it makes it.
          starts.forEach((start, i) => expect(start).toBeLessThanOrEqual(Math.max(arrivals[i]!, arrivals[0]!) + i * interval + 1e-6));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("lets limit + burst start at once, then one per period / limit (Inngest's example)", () => {
    // throttle { limit: 2, period: "6s", burst: 1 }: six events 0.5 s apart.
    expect(schedule([0, 500, 1000, 1500, 2000, 2500], 2, 6000, 3)).toEqual([0, 500, 1000, 3000, 6000, 9000]);
  });
});

describe("flow keys", () => {
  it("keep type and absence apart: a missing field, null, \"null\", 1 and \"1\" are five keys", () => {
    const keyOf = compileFlowControl({ rateLimit: { limit: 1, period: 60_000, key: "event.data.k" } }, "keys").rateLimit!.keyOf;
    const event = (data: Record<string, unknown>) => ({ id: "e", name: "n", data, ts: 0 });
    const keys = [event({}), event({ k: null }), event({ k: "null" }), event({ k: 1 }), event({ k: "1" })].map(keyOf);
    expect(new Set(keys).size).toBe(5);
    expect(keys[0]).toBe(MISSING_KEY);
    // A string is its own key (what coordinators were named by before keys were typed).
    expect(keys[2]).toBe("null");
    expect(keys[4]).toBe("1");
  });
});
