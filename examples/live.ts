// A long job that reports its progress on its run's live stream (docs/live-runs.md).
import type { Stepflare } from "../sdk/index.ts";

export function liveExamples(app: Stepflare) {
  /**
   * Imports a CSV in chunks, one step per chunk, and publishes its progress after each, so a page
   * subscribed to `GET /v1/runs/:runId/stream` shows a progress bar without polling. A short sleep
   * between chunks stands for real work (and makes the progress visible in a terminal).
   */
  const importCsv = app.createFunction({ id: "import-csv" }, { event: "data/csv.uploaded" }, async ({ event, step }) => {
    const chunks = Number(event.data.chunks ?? 5);
    await step.publish("status", { state: "started", chunks });
    let rows = 0;
    for (let i = 0; i < chunks; i++) {
      rows += await step.run("import-chunk", () => 100 + i);
      await step.publish("progress", { done: i + 1, of: chunks, rows });
      await step.sleep("breathe", "1s");
    }
    await step.publish("status", { state: "done", rows });
    return { rows };
  });

  return [importCsv];
}
