import { afterEach, describe, expect, it, vi } from "vitest";
import { stuckThresholds } from "./stuck.ts";

afterEach(() => vi.restoreAllMocks());

describe("the stuck-run thresholds", () => {
  it("reads them in seconds, and keeps the default for a bad value with one warning naming it", () => {
    expect(stuckThresholds({ STEPFLARE_STUCK_RETRYING_SECONDS: "600" })).toEqual({ overdueMs: 60_000, retryingMs: 600_000 });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    expect(stuckThresholds({ STEPFLARE_STUCK_OVERDUE_SECONDS: "1m" }).overdueMs).toBe(60_000);
    expect(stuckThresholds({ STEPFLARE_STUCK_OVERDUE_SECONDS: "1m" }).overdueMs).toBe(60_000);
    expect(warn).toHaveBeenCalledOnce();
    expect(JSON.parse(String(warn.mock.calls[0]![0]))).toMatchObject({ level: "warn", message: "STEPFLARE_STUCK_OVERDUE_SECONDS must be a whole number of seconds; keeping 60", value: "1m" });
  });
});
