import { describe, expect, it } from "vitest";
import { backoffDelay } from "./retry.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;

describe("backoffDelay", () => {
  it("waits as Inngest does: 15 s, 30 s, 1 m, 2 m, 5 m, 10 m, 20 m, 40 m, 1 h, then 2 h", () => {
    const waits = Array.from({ length: 12 }, (_, i) => backoffDelay(i + 1, () => 0));
    expect(waits).toEqual([15 * SECOND, 30 * SECOND, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 20 * MINUTE, 40 * MINUTE, 60 * MINUTE, 120 * MINUTE, 120 * MINUTE, 120 * MINUTE]);
  });

  it("adds up to 30 s of jitter", () => {
    expect(backoffDelay(1, () => 0.5)).toBe(30 * SECOND);
    expect(backoffDelay(1, () => 0.999999)).toBe(15 * SECOND + 29_999);
  });
});
