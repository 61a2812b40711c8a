import { describe, expect, it } from "vitest";
import { AppCard } from "./apps.tsx";
import { lastHours } from "./chart.tsx";
import { ErrorBlock, Json, RunsTable } from "./components.tsx";
import { APP_JS } from "./script.ts";
import { Timeline, timelineWindow } from "./timeline.tsx";
import { CONTENT_SECURITY_POLICY } from "../pageHeaders.ts";

const HOSTILE = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`;

async function html(node: unknown): Promise<string> {
  return String(await (node as { toString(): string | Promise<string> }).toString());
}

describe("dashboard components", () => {
  it("write strangers' payloads, outputs and errors as text", async () => {
    const out = [
      await html(Json({ value: { html: HOSTILE } })),
      await html(
        AppCard({
          app: {
            id: HOSTILE,
            url: HOSTILE,
            framework: HOSTILE,
            sdk: HOSTILE,
            functions: [{ id: HOSTILE, name: HOSTILE, triggers: [{ event: HOSTILE }, { cron: HOSTILE }] }],
            synced_at: "2026-01-01T00:00:00.000Z",
            error: HOSTILE,
            error_at: "2026-01-01T00:00:01.000Z",
          },
        }),
      ),
      await html(ErrorBlock({ error: { name: HOSTILE, message: HOSTILE, stack: HOSTILE } })),
      await html(
        RunsTable({ runs: [{ run_id: HOSTILE, function_id: HOSTILE, event_id: HOSTILE, status: "Failed", run_started_at: "2026-01-01T00:00:00.000Z", ended_at: null }] }),
      ),
      await html(
        Timeline({
          runId: "r",
          canRerun: true,
          window: { start: 0, end: 1 },
          steps: [
            {
              id: HOSTILE,
              name: HOSTILE,
              kind: "run",
              status: "Failed",
              wake_at: null,
              attempts: 1,
              output: HOSTILE,
              error: { name: "Error", message: HOSTILE },
              failed_attempts: [{ error: { name: "Error", message: HOSTILE, stack: HOSTILE }, started_at: "2026-01-01T00:00:00.000Z", ended_at: "2026-01-01T00:00:01.000Z" }],
              started_at: "2026-01-01T00:00:00.000Z",
              ended_at: "2026-01-01T00:00:01.000Z",
            },
          ],
        }),
      ),
    ].join("\n");
    expect(out).not.toMatch(/<script|<img/i);
    expect(out).toContain("&lt;script&gt;");
    // No style attributes: the CSP forbids inline styles.
    expect(out).not.toMatch(/\sstyle=/);
  });

  it("counts the last 24 hours, the hours without runs as zero", () => {
    const now = Date.parse("2026-01-02T10:30:00Z");
    const slots = lastHours([{ hour: "2026-01-02T09:00:00.000Z", runs: 3, failures: 1 }], now);
    expect(slots).toHaveLength(24);
    expect(slots.at(-1)).toEqual({ start: Date.parse("2026-01-02T10:00:00Z"), runs: 0, failures: 0 });
    expect(slots.at(-2)).toEqual({ start: Date.parse("2026-01-02T09:00:00Z"), runs: 3, failures: 1 });
  });

  it("draws a running step to now on its run's time axis", () => {
    const window = timelineWindow("2026-01-01T00:00:00.000Z", null, [], Date.parse("2026-01-01T00:01:00.000Z"));
    expect(window).toEqual({ start: Date.parse("2026-01-01T00:00:00.000Z"), end: Date.parse("2026-01-01T00:01:00.000Z") });
  });
});

describe("dashboard assets", () => {
  it("serve a script that parses and writes no HTML from data", () => {
    expect(() => new Function(APP_JS)).not.toThrow();
    expect(APP_JS).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it("send the strict CSP", () => {
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
  });
});
