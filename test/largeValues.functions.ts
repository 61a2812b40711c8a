// Functions of the large values tests (test/largeValues.test.ts).
import { env } from "cloudflare:workers";
import type { Stepflare } from "../sdk/index.ts";

/** Records one side effect under `key`. */
async function effect(key: string): Promise<void> {
  await env.DB.prepare("INSERT INTO test_effects (key) VALUES (?1)").bind(key).run();
}

export function largeValuesFunctions(app: Stepflare) {
  /** A step whose output is `bytes` long, memoized across a sleep (the replay after it reads the output back). */
  const largeOutput = app.createFunction({ id: "large-output", retries: 0 }, { event: "test/large.output" }, async ({ event, step }) => {
    const big = await step.run("big", async () => {
      await effect(`${event.data.key}:big`);
      return "x".repeat(event.data.bytes as number);
    });
    await step.sleep("nap", 50);
    const small = await step.run("small", () => "small");
    return { length: big.length, intact: big === "x".repeat(big.length), small };
  });

  /** Reports the size of the event it was triggered by, as its handler saw it. */
  const largeEvent = app.createFunction({ id: "large-event" }, { event: "test/large.event" }, async ({ event, step }) => {
    const length = await step.run("measure", () => (event.data.blob as string).length);
    return { length, intact: event.data.blob === "y".repeat(length) };
  });

  return [largeOutput, largeEvent];
}
