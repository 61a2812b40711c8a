// The service binding (issue 11): other Workers send events, invoke functions and read or cancel
// runs through StepflareService, over RPC. Here the test Worker's own entrypoint answers, as a
// binding to it would; test/e2e/devserver.test.ts drives it from a second Worker.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { InvokeAnswer, SendAnswer } from "../worker/rpc.ts";
import type { RunView } from "../worker/views/runView.ts";
import { eventually, finishedRuns, uniqueKey } from "./helpers.ts";

/** The entrypoint as a binding to it answers (RPC types cannot carry the views' `unknown` outputs). */
interface Binding {
  send(events: unknown): Promise<SendAnswer>;
  invoke(functionId: string, data?: Record<string, unknown>): Promise<InvokeAnswer>;
  getRun(runId: string): Promise<RunView | null>;
  cancel(runId: string): Promise<RunView | null>;
}
const service = (exports as unknown as { StepflareService: Binding }).StepflareService;

async function invoked(functionId: string, data: Record<string, unknown>): Promise<string> {
  const answer = await service.invoke(functionId, data);
  if (!("runId" in answer)) throw new Error(answer.error);
  return answer.runId;
}

describe("StepflareService", () => {
  it("sends events as the event API does, and refuses what it refuses", async () => {
    const key = uniqueKey("rpc-send");
    const sent = await service.send([{ name: "test/fanout", data: { key } }]);
    if (!("ids" in sent)) throw new Error(sent.error);
    expect((await finishedRuns(sent.ids[0]!, 2)).get("fanout-a")).toMatchObject({ status: "Completed", output: `a:${key}` });
    expect(await service.send({ data: {} })).toEqual({ error: "invalid event at name: Invalid input: expected string, received undefined", status: 400, path: "name" });
    expect(await service.send({ name: "inngest/function.failed" })).toMatchObject({ status: 400, error: expect.stringMatching(/reserved/) });
    expect(await service.send([])).toEqual({ ids: [], status: 200 });
  });

  it("invokes a function directly, and reads and cancels its run", async () => {
    const runId = await invoked("cancellable", { key: uniqueKey("rpc-invoke") });
    const sleeping = await eventually(async () => {
      const run = await service.getRun(runId);
      return run?.steps.some((step) => step.name === "long-wait") ? run : undefined;
    });
    expect(sleeping).toMatchObject({ run_id: runId, function_id: "cancellable", status: "Running" });
    expect(await service.cancel(runId)).toMatchObject({ status: "Cancelled" });
    expect((await service.getRun(runId))?.status).toBe("Cancelled");
  });

  it("answers null for an unknown run and refuses an unknown function", async () => {
    expect(await service.getRun("not-a-run-id")).toBeNull();
    expect(await service.getRun("0123456789abcdef0123456789abcdef")).toBeNull();
    expect(await service.invoke("no-such-function", {})).toEqual({ error: 'no function with id "no-such-function"', status: 404 });
  });
});
