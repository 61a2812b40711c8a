import type { Stepflare } from "../sdk/index.ts";

/**
 * A local function that hands work to a function of a synced Inngest app (docs/inngest-apps.md,
 * "Bring your Inngest app"): `step.invoke` takes a remote function by its id, `<app id>-<function id>`,
 * here named by the event (`demo/delegate` with `{ functionId: "my-app-resize", data: {...} }`).
 */
export function remoteExamples(app: Stepflare) {
  const delegate = app.createFunction({ id: "delegate" }, { event: "demo/delegate" }, async ({ event, step }) => {
    const result = await step.invoke("remote", { function: String(event.data.functionId), data: event.data.data ?? {}, timeout: "10m" });
    return { result };
  });
  return [delegate];
}
