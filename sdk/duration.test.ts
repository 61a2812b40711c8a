import { describe, expect, it } from "vitest";
import { toEpochMs, toMilliseconds } from "./duration.ts";

describe("toMilliseconds", () => {
  it.each([
    [1000, 1000],
    [0, 0],
    ["30s", 30_000],
    ["1h30m", 5_400_000],
    ["2 days", 2 * 24 * 3_600_000],
    ["PT1H", 3_600_000],
  ] as const)("reads %j as %d ms", (input, expected) => {
    expect(toMilliseconds(input)).toBe(expected);
  });

  it.each(["abc", "", "soon", -1, Number.NaN, Number.POSITIVE_INFINITY])("rejects %j with a TypeError that says what to use", (input) => {
    expect(() => toMilliseconds(input)).toThrow(TypeError);
    expect(() => toMilliseconds(input)).toThrow(/invalid duration .*"30s"/);
  });
});

describe("toEpochMs", () => {
  const at = Date.parse("2026-12-01T09:00:00.000Z");

  it("reads a Date", () => {
    expect(toEpochMs(new Date(at))).toBe(at);
  });

  it("reads an ISO 8601 string", () => {
    expect(toEpochMs("2026-12-01T09:00:00Z")).toBe(at);
    expect(toEpochMs("2026-12-01T10:00:00+01:00")).toBe(at);
  });

  it("reads epoch ms as they are", () => {
    expect(toEpochMs(at)).toBe(at);
  });

  it.each([["not a date"], [new Date("nope")], [Number.NaN]])("rejects %s with a TypeError", (input) => {
    expect(() => toEpochMs(input)).toThrow(TypeError);
    expect(() => toEpochMs(input)).toThrow(/invalid time/);
  });
});
