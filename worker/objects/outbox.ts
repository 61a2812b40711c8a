import type { StoredEvent } from "../../sdk/event.ts";
import type { CancelReason } from "../../sdk/function.ts";
import type { InvokeResult } from "../../sdk/wait.ts";
import { deleteRunWaitsStatement, deleteWaitsStatement } from "../db/waits.ts";
import type { Env } from "../env.ts";
import { ingestEvents } from "../ingest.ts";
import { startInvokedRun } from "../invoke.ts";
import { findFunction } from "../registry.ts";
import { registerWaits } from "../waits.ts";
import type { OutboxEntry } from "./RunStore.ts";

/** What delivering an entry may do to the run that sent it. */
export interface OutboxRun {
  runId: string;
  /** An event the waits index already held resolves a wait step of this run. */
  resolveWait(stepId: string, index: number, event: StoredEvent): Promise<unknown>;
  /** An invoke step of this run ends without a child (the function is not registered). */
  resolveInvoke(stepId: string, result: InvokeResult): Promise<unknown>;
  /** An event the waits index already held cancels this run (cancelOn). */
  cancel(reason: CancelReason): void;
}

/**
 * Delivers one outbox entry; throws if D1, the queue or another object did not take it, and the
 * entry stays for the next try. Every delivery is idempotent: events carry fixed ids, wait rows
 * fixed keys, a child run a derived id, and a parent ignores a second resumption.
 */
export async function deliverEntry(env: Env, run: OutboxRun, entry: OutboxEntry): Promise<void> {
  switch (entry.kind) {
    case "events":
      await ingestEvents(env, entry.events);
      return;
    case "waits": {
      const matches = await registerWaits(env, entry.rows);
      for (const { row, accepted } of matches) {
        if (row.kind === "wait") await run.resolveWait(row.step_id, row.idx, accepted.event);
        // Not awaited: the cancel ends the run through this same outbox.
        else run.cancel({ type: "event", event: accepted.event });
      }
      if (matches.length > 0) await env.DB.batch([deleteWaitsStatement(env.DB, matches.map((match) => match.row.id))]);
      return;
    }
    case "clear-waits":
      await env.DB.batch([deleteRunWaitsStatement(env.DB, run.runId)]);
      return;
    case "invoke": {
      const fn = findFunction(entry.functionId);
      if (!fn) {
        const error = { name: "NonRetriableError", message: `step.invoke: no function with id ${JSON.stringify(entry.functionId)} is registered` };
        await run.resolveInvoke(entry.stepId, { error });
        return;
      }
      await startInvokedRun(env, fn, entry.data, { runId: run.runId, stepId: entry.stepId });
      return;
    }
    case "resume-parent":
      await env.RUNS.get(env.RUNS.idFromName(entry.parent.runId)).resolveInvoke(entry.parent.stepId, entry.result);
      return;
  }
}
