// Functions of the live-stream tests (test/stream.test.ts).
import type { Stepflare } from "../sdk/index.ts";

export function streamFunctions(app: Stepflare) {
  /** Waits for a start signal (subscribers join then), works and publishes, waits again (a late joiner joins then), ends. */
  const twoWaits = app.createFunction({ id: "stream-two-waits" }, { event: "test/stream.two-waits" }, async ({ step }) => {
    await step.waitForEvent("start", { event: "test/stream.start", match: "data.key", timeout: "1m" });
    const one = await step.run("one", () => 1);
    await step.publish("progress", { done: one });
    await step.waitForEvent("go", { event: "test/stream.go", match: "data.key", timeout: "1m" });
    await step.publish("progress", { done: 2 });
    const two = await step.run("two", () => 2);
    return { one, two };
  });

  /** Publishes five messages around a sleep, so the run replays the first ones after it wakes. */
  const progress = app.createFunction({ id: "stream-progress" }, { event: "test/stream.progress" }, async ({ step }) => {
    await step.waitForEvent("start", { event: "test/stream.start", match: "data.key", timeout: "1m" });
    for (let i = 0; i < 3; i++) await step.publish("progress", { i });
    await step.sleep("nap", "200ms");
    for (let i = 3; i < 5; i++) await step.publish("progress", { i });
    return "published";
  });

  return [twoWaits, progress];
}
