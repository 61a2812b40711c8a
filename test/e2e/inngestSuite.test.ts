/**
 * Inngest's own scenarios on the wire: functions as inngest-js's suite writes them
 * (packages/inngest/src/test/functions/), on the official `inngest` package served by `inngest/node`,
 * synced to Stepflare under `wrangler dev` and read back through the REST API, each asserting what
 * Inngest's test asserts. (handling-step-errors runs with retries: 0 here: Inngest's retries: 1 would
 * wait 15 to 45 s of backoff per failed step; worker/remote/inngestSuite.test.ts runs it with retries: 1
 * on a fake clock.)
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Inngest, referenceFunction } from "inngest";
import { serve } from "inngest/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlingStepErrorsHandler } from "../inngestSuite.functions.ts";
import { stepflareApi, type RunDetail } from "./stepflareApi.ts";
import { startDevServer, type DevServer } from "./wrangler.ts";

let dev: DevServer;
let inngest: Inngest;
let server: http.Server | undefined;
let api: ReturnType<typeof stepflareApi>["api"];
let finished: ReturnType<typeof stepflareApi>["finished"];

function suiteFunctions(inngest: Inngest) {
  const handlingStepErrors = inngest.createFunction({ id: "handling-step-errors", retries: 0, triggers: [{ event: "demo/handling.step.errors" }] }, handlingStepErrorsHandler);

  const stepInvokeNotFound = inngest.createFunction(
    {
      id: "step-invoke-not-found",
      triggers: [{ event: "demo/step.invoke.not-found" }],
    },
    async ({ step }) => {
      await step.invoke("invoke-non-existent-fn", {
        function: referenceFunction({ functionId: "non-existant-fn" }),
      });
    },
  );
  return [handlingStepErrors, stepInvokeNotFound];
}

beforeAll(async () => {
  dev = await startDevServer(["wrangler.toml"], "/v1/functions");
  ({ api, finished } = stepflareApi(dev, { runTimeoutMs: 45_000 }));
  inngest = new Inngest({ id: "suite-app", isDev: true, baseUrl: dev.baseUrl });
  const handler = serve({ client: inngest, functions: suiteFunctions(inngest) });
  const app = http.createServer(handler);
  server = app;
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/api/inngest`;
  const synced = await api("POST", "/v1/apps", { url });
  expect(synced.status, JSON.stringify(synced.body)).toBe(200);
});

afterAll(async () => {
  if (server) {
    const stopping = new Promise((resolve) => server!.close(resolve));
    server.closeAllConnections();
    await stopping;
  }
  await dev?.stop();
});

type Step = RunDetail["steps"][number] & { error?: unknown };

function stepNamed(run: RunDetail, name: string): Step {
  const found = run.steps.find((s) => s.name === name);
  expect(found, `step "${name}" in ${JSON.stringify(run.steps.map((s) => s.name))}`).toBeDefined();
  return found as Step;
}

async function send(name: string): Promise<string> {
  const { ids } = await inngest.send({ name, data: {} });
  return ids[0]!;
}

describe("Inngest's suite, served by the inngest package", () => {
  it("handling-step-errors: the app's handler reads err.cause.message and the run completes", async () => {
    const run = await finished(await send("demo/handling.step.errors"), "suite-app-handling-step-errors");
    expect(run.status).toBe("Completed");
    const a = stepNamed(run, "a");
    expect(a.status).toBe("Failed");
    expect(a.error).toEqual({
      name: "Error",
      message: "Oh no!",
      stack: expect.any(String),
      cause: expect.objectContaining({ name: "Error", message: "This is the cause" }),
    });
    expect(stepNamed(run, "b")).toMatchObject({ status: "Completed", output: `err was: "Oh no!" and the cause was: "This is the cause"` });
    expect(stepNamed(run, "c succeeds")).toMatchObject({ status: "Completed", output: "c succeeds" });
    const d = stepNamed(run, "d fails");
    expect(d.status).toBe("Failed");
    expect(d.error).toMatchObject({ name: "Error", message: "D failed!", stack: expect.any(String) });
    expect(stepNamed(run, "e succeeds")).toMatchObject({ status: "Completed", output: { errMessage: "D failed!" } });
  });

  it("step-invoke-not-found: the invoke step fails with an Error that says it could not find the function", async () => {
    const run = await finished(await send("demo/step.invoke.not-found"), "suite-app-step-invoke-not-found");
    expect(run.status).toBe("Failed");
    const step = stepNamed(run, "invoke-non-existent-fn");
    expect(step.status).toBe("Failed");
    const error = step.error as { name: string; message: string };
    expect(error.name).toEqual("Error");
    expect(error.message).toContain("could not find function");
  });
});
