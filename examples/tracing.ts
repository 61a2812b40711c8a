// A run worth a trace (docs/production.md, "Tracing"): a step that fails once and is retried, a
// sleep and a wait, each a span of its own when STEPFLARE_OTLP_ENDPOINT is set.
import { RetryAfterError, type Stepflare } from "../sdk/index.ts";

export function tracingExamples(app: Stepflare) {
  /**
   * Sends a welcome email through a mail service that fails the first attempt (retried a second
   * later), rests a second, then waits up to a minute for the user's `app/user.verified` event.
   */
  const verifyUser = app.createFunction({ id: "verify-user" }, { event: "app/user.registered" }, async ({ event, step, attempt }) => {
    await step.run("send-welcome", () => {
      if (attempt === 0) throw new RetryAfterError("the mail service is warming up", "1s");
      return { to: event.data.email, attempt };
    });
    await step.sleep("rest", "1s");
    const verified = await step.waitForEvent("wait-for-verification", { event: "app/user.verified", match: "data.userId", timeout: "1m" });
    return { verified: verified !== null };
  });

  return [verifyUser];
}
