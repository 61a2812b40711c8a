import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_RETENTION_DAYS, retentionDays, signingKey } from "./env.ts";
import { StepflareError } from "./errors.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("retentionDays", () => {
  it("is 30 days when STEPFLARE_RETENTION_DAYS is unset", () => {
    expect(retentionDays({})).toBe(DEFAULT_RETENTION_DAYS);
    expect(DEFAULT_RETENTION_DAYS).toBe(30);
  });

  it("reads a positive whole number of days", () => {
    expect(retentionDays({ STEPFLARE_RETENTION_DAYS: "7" })).toBe(7);
    expect(retentionDays({ STEPFLARE_RETENTION_DAYS: " 400 " })).toBe(400);
  });

  it.each(["0", "-3", "1.5", "30d", "", "1e3", "99999999999999999"])("keeps 30 days for %j, with a warning naming the value", (value) => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    expect(retentionDays({ STEPFLARE_RETENTION_DAYS: value })).toBe(30);
    expect(warn).toHaveBeenCalledOnce();
    const line = JSON.parse(String(warn.mock.calls[0]![0])) as { level: string; message: string; value: string };
    expect(line).toMatchObject({ level: "warn", value });
    expect(line.message).toMatch(/^STEPFLARE_RETENTION_DAYS .+; keeping 30 days$/);
  });

  it("parses a value once: the tick does not warn every minute", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    for (let i = 0; i < 3; i++) expect(retentionDays({ STEPFLARE_RETENTION_DAYS: "soon" })).toBe(30);
    expect(warn).toHaveBeenCalledOnce();
  });
});

describe("signingKey", () => {
  const hex = "0123456789abcdef".repeat(4);

  it("is undefined when STEPFLARE_SIGNING_KEY is unset or empty", () => {
    expect(signingKey({})).toBeUndefined();
    expect(signingKey({ STEPFLARE_SIGNING_KEY: "" })).toBeUndefined();
  });

  it.each([hex, `signkey-prod-${hex}`, `signkey-branch-${hex}`])("takes the README's form %s", (key) => {
    expect(signingKey({ STEPFLARE_SIGNING_KEY: key })).toBe(key);
  });

  it.each(["my-super-secret-password", hex.toUpperCase(), hex.slice(2), `${hex}ab`, `signkey-prod-${hex.slice(1)}`, `SIGNKEY-PROD-${hex}`, `signkey-prod-x${hex}`])(
    "refuses %j with config.invalid, naming the secret, and logs it once",
    (key) => {
      const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
      for (let i = 0; i < 3; i++) {
        let thrown: unknown;
        try {
          signingKey({ STEPFLARE_SIGNING_KEY: key });
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(StepflareError);
        expect(thrown).toMatchObject({ code: "config.invalid", message: expect.stringMatching(/^STEPFLARE_SIGNING_KEY is not in a form Stepflare accepts/) });
        expect((thrown as Error).message).not.toContain(key);
      }
      expect(error).toHaveBeenCalledOnce();
    },
  );
});
