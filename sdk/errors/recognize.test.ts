import { NonRetriableError as InngestNonRetriable, RetryAfterError as InngestRetryAfter } from "inngest";
import { describe, expect, it } from "vitest";
import { drive, FakeClock } from "../testing.ts";
import { isNonRetriable, retryAfterOf } from "./recognize.ts";
import { RetryAfterError } from "./RetryAfterError.ts";

describe("errors imported from inngest", () => {
  it("are recognised by name and shape", () => {
    expect(isNonRetriable(new InngestNonRetriable("gone"))).toBe(true);
    expect(isNonRetriable(new Error("plain"))).toBe(false);
    const now = Date.UTC(2026, 0, 1);
    expect(retryAfterOf(new InngestRetryAfter("busy", "30s"), now)).toBe(now + 30_000);
    expect(retryAfterOf(new InngestRetryAfter("busy", new Date(now + 5000)), now)).toBe(now + 5000);
    expect(retryAfterOf(new RetryAfterError("busy", "2m"), now)).toBe(now + 120_000);
    expect(retryAfterOf(new Error("plain"), now)).toBeUndefined();
  });
});

describe("a step that throws one", () => {
  it("fails at once for Inngest's NonRetriableError, and retries when Inngest's RetryAfterError says", async () => {
    let attempts = 0;
    const failed = await drive(async ({ step }) => step.run("charge", () => {
      attempts++;
      throw new InngestNonRetriable("card declined");
    }), { retries: 4 });
    expect(failed.outcome).toMatchObject({ type: "failed", error: { name: "StepError" } });
    expect(attempts).toBe(1);

    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const calls: number[] = [];
    const retried = await drive(async ({ step }) => step.run("call", () => {
      calls.push(clock.now());
      if (calls.length === 1) throw new InngestRetryAfter("busy", "90s");
      return "ok";
    }), { clock });
    expect(retried.outcome).toEqual({ type: "completed", output: "ok" });
    expect(calls[1]! - calls[0]!).toBe(90_000);
  });
});
