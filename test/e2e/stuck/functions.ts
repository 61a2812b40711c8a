// The functions of the stuck-run end-to-end test (test/e2e/stuck.test.ts), served by two entries
// that differ as two deploys would: `before.ts` has `nap-then-finish`, `after.ts` has it renamed.
import { Stepflare } from "../../../sdk/index.ts";

export const app = new Stepflare({ id: "stuck-e2e" });

/** Whether the cause of `keeps-failing`'s failures is fixed (`POST /test/fix`): one per isolate, which under `wrangler dev` the Worker and its objects share. */
export const cause = { fixed: false };

/** A run that sleeps a little between two steps: the one whose function a deploy renames, and the one whose alarm is lost. */
function napThenFinish(id: string, event: string) {
  return app.createFunction({ id }, { event }, async ({ event: e, step }) => {
    const before = await step.run("before", () => `before:${e.data.key}`);
    await step.sleep("nap", "2s");
    const after = await step.run("after", () => "after");
    return { before, after };
  });
}

/** Renamed by the second deploy: `nap-then-finish-v2` in after.ts. */
export const renamedFunction = (id: string) => napThenFinish(id, "stuck/nap");

export const alarmLost = napThenFinish("alarm-lost", "stuck/alarm");

/** A step that fails until the cause is fixed: it retries, 15 s and more apart. */
export const keepsFailing = app.createFunction({ id: "keeps-failing", retries: 10 }, { event: "stuck/flaky" }, async ({ step }) =>
  step.run("flaky", () => {
    if (!cause.fixed) throw new Error("the cause is not fixed yet");
    return "fixed";
  }),
);

/** The Worker's fetch with `POST /test/fix`, which fixes the cause of `keeps-failing`'s failures. */
export function withFixRoute(handler: ExportedHandler<never, never>): ExportedHandler<never, never> {
  return {
    ...handler,
    fetch(request, env, ctx) {
      if (new URL(request.url).pathname === "/test/fix") {
        cause.fixed = true;
        return new Response("fixed");
      }
      return handler.fetch!(request, env, ctx);
    },
  };
}
