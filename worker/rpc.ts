import { WorkerEntrypoint } from "cloudflare:workers";
import { z } from "zod";
import { instrument } from "./platform/bindings.ts";
import type { Env } from "./platform/env.ts";
import { acceptEvents, IngestError } from "./ingest/ingest.ts";
import { dispatchFromRequest } from "./dispatch/inline.ts";
import type { RunWithSteps } from "./runs/RunObject.ts";
import { findFunction } from "./platform/registry.ts";
import { startInvokedRun } from "./runs/invoke.ts";
import { FunctionPausedError, runObject } from "./runs/door.ts";
import { RUN_ID_PATTERN } from "./platform/runId.ts";
import { HTTP_STATUS } from "./routes/errors.ts";
import { toRunView, type RunView } from "./views/runView.ts";

const invokeDataSchema = z.record(z.string(), z.unknown()).default({});

/** What `send` answers: `POST /e/:key`'s body. */
export type SendAnswer = { ids: string[]; status: 200 } | { error: string; status: 400 | 413; path?: string };
/** What `invoke` answers: the new run's id, or why there is none. */
export type InvokeAnswer = { runId: string; status: 200 } | { error: string; status: 400 | 404 | 409 };

/**
 * What other Workers reach through a service binding (DESIGN "Ways in"): typed RPC, no HTTP, no
 * event key. Bind it in the caller's `wrangler.toml`:
 *
 * @example
 * // [[services]]
 * // binding = "STEPFLARE"
 * // service = "stepflare"
 * // entrypoint = "StepflareService"
 * const answer = await env.STEPFLARE.send({ name: "shop/order.placed", data: { orderId } });
 * if ("error" in answer) console.error(answer.error);
 */
export class StepflareService extends WorkerEntrypoint<Env> {
  /**
   * Sends one event or an array, as `POST /e/:key` takes them, and answers as it does: the ids, or
   * the error that says what is wrong (nothing stored then).
   */
  async send(events: unknown): Promise<SendAnswer> {
    try {
      const env = instrument(this.env);
      const { ids } = await acceptEvents(env, events, dispatchFromRequest(env, (work) => this.ctx.waitUntil(work)));
      return { ids, status: 200 };
    } catch (err) {
      if (err instanceof IngestError) return { error: err.message, status: HTTP_STATUS[err.code], ...(err.path ? { path: err.path } : {}) };
      throw err;
    }
  }

  /**
   * Starts a run of `functionId` now with `data`, without matching any trigger (as `step.invoke`
   * will), and answers the run's id. Its event is `inngest/function.invoked`.
   */
  async invoke(functionId: string, data?: Record<string, unknown>): Promise<InvokeAnswer> {
    const fn = findFunction(functionId);
    if (!fn) return { error: `no function with id ${JSON.stringify(functionId)}`, status: 404 };
    const parsed = invokeDataSchema.safeParse(data);
    if (!parsed.success) return { error: `invoke(${JSON.stringify(functionId)}): data must be an object`, status: 400 };
    try {
      const { runId } = await startInvokedRun(instrument(this.env), fn, parsed.data);
      return { runId, status: 200 };
    } catch (err) {
      if (err instanceof FunctionPausedError) return { error: err.message, status: HTTP_STATUS["function.paused"] };
      throw err;
    }
  }

  /** The run with its steps, as `GET /v1/runs/:runId` shows it; null for an unknown id. */
  async getRun(runId: string): Promise<RunView | null> {
    if (!RUN_ID_PATTERN.test(runId)) return null;
    return view((await this.runObject(runId).getRun()) as RunWithSteps | null);
  }

  /** Cancels the run, as `DELETE /v1/runs/:runId` does; null for an unknown id. */
  async cancel(runId: string): Promise<RunView | null> {
    if (!RUN_ID_PATTERN.test(runId)) return null;
    return view((await this.runObject(runId).cancel()) as RunWithSteps | null);
  }

  private runObject(runId: string) {
    return runObject(instrument(this.env), runId);
  }
}

function view(found: RunWithSteps | null): RunView | null {
  return found ? toRunView(found.run, found.steps) : null;
}
