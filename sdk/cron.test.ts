import { describe, expect, it } from "vitest";
import { parseCron } from "./cron.ts";

const at = (iso: string) => Date.parse(iso);

describe("parseCron", () => {
  it("reads Inngest's TZ= prefix and fires at local time across a daylight-saving change", () => {
    const monday9 = parseCron("TZ=Europe/Paris 0 9 * * 1", "test");
    expect(monday9.timezone).toBe("Europe/Paris");
    // 2026-03-29 is the spring change in Paris: 09:00 is 08:00Z before it, 07:00Z after it.
    expect(monday9.nextAfter(at("2026-03-20T00:00:00Z"))).toBe(at("2026-03-23T08:00:00Z"));
    expect(monday9.nextAfter(at("2026-03-28T00:00:00Z"))).toBe(at("2026-03-30T07:00:00Z"));
    // Strictly after: the time itself is not next.
    expect(monday9.nextAfter(at("2026-03-30T07:00:00Z"))).toBe(at("2026-04-06T07:00:00Z"));
    expect(monday9.lastAtOrBefore(at("2026-03-30T07:00:00Z"))).toBe(at("2026-03-30T07:00:00Z"));
    expect(monday9.lastAtOrBefore(at("2026-04-01T00:00:00Z"))).toBe(at("2026-03-30T07:00:00Z"));
  });

  it("uses UTC without a prefix, and knows nicknames such as @daily", () => {
    expect(parseCron("0 9 * * 1", "test").nextAfter(at("2026-03-28T00:00:00Z"))).toBe(at("2026-03-30T09:00:00Z"));
    expect(parseCron("@daily", "test").nextAfter(at("2026-01-01T10:00:00Z"))).toBe(at("2026-01-02T00:00:00Z"));
  });

  it("refuses a bad pattern, a seconds field and an unknown time zone, naming the owner", () => {
    expect(() => parseCron("61 * * * *", 'function "f"')).toThrow(/function "f": invalid cron "61 \* \* \* \*"/);
    expect(() => parseCron("* * * * * *", 'function "f"')).toThrow(/five fields/);
    expect(() => parseCron("TZ=Mars/Olympus 0 9 * * 1", 'function "f"')).toThrow(/function "f": invalid cron .*Mars\/Olympus/);
  });
});
