import type { StoredEvent } from "../../sdk/event.ts";
import type { CancelReason } from "../../sdk/function.ts";
import type { InvokeResult } from "../../sdk/wait.ts";
import { cancellationsSinceStatement } from "../db/cancellations.ts";
import { endRunStatement, insertRunStatement, type RunIndexEntry } from "../db/runs.ts";
import { recordLayout, shardFor, shardIndex, shardsOf } from "../db/shards.ts";
import type { RunStatus } from "../platform/types.ts";
import type { Env } from "../platform/env.ts";
import { createLogger } from "../platform/logger.ts";
import { traceExport } from "../traces/config.ts";
import { encodeTrace, sendTrace, type ExportResult } from "../traces/otlp.ts";
import { isTraceGivenUp, nextTraceTry } from "../traces/schedule.ts";
import { runTrace } from "../traces/spans.ts";
import { deliverEntry } from "./outbox.ts";
import { costInDollars, runUsage } from "./runCost.ts";
import type { RunRecord, RunStore } from "./RunStore.ts";

// Delivery of what leaves a run (DESIGN "An outbox for everything that leaves a run"): the outbox's
// entries, one at a time in order, and the run's end to the D1 runs index. What fails stays for the
// alarm to try again.

/** What delivering an entry may do to the run that sent it (its RunObject). */
export interface DeliveryTarget {
  resolveWait(stepId: string, index: number, event: StoredEvent): Promise<unknown>;
  resolveInvoke(stepId: string, result: InvokeResult): Promise<unknown>;
  cancel(reason: CancelReason): Promise<unknown>;
  releaseFlow(): Promise<unknown>;
  /** An invocation holds the run's concurrency slots now: a give-back waits for it to release them. */
  holdsSlots(): boolean;
  /** Sets the alarm to the earliest thing the object must do (a delivery that failed is one). */
  rearm(): Promise<void>;
}

/** The delivery of one run's outbox and end (a RunObject has one). */
export class RunDelivery {
  /** The outbox delivery in progress, so two never send the same entry at once. */
  private delivering: Promise<void> | null = null;
  /** The trace export in progress, so two never send the same trace at once. */
  private exporting: Promise<void> | null = null;
  /** The run's end reached the runs index (in memory: after a restart the alarm sends it again, harmlessly). */
  endDelivered = false;

  constructor(
    private readonly env: Env,
    private readonly store: RunStore,
    private readonly target: DeliveryTarget,
  ) {}

  /** Sends the outbox's entries; what fails stays for the alarm to retry. */
  deliverOutbox(): Promise<void> {
    this.delivering ??= this.sendOutbox().finally(() => (this.delivering = null));
    return this.delivering;
  }

  private async sendOutbox(): Promise<void> {
    const target = {
      runId: this.store.run()?.id ?? "",
      functionId: this.store.run()?.functionId ?? "",
      events: this.store.run()?.events ?? [],
      resolveWait: (stepId: string, index: number, event: StoredEvent) => this.target.resolveWait(stepId, index, event),
      resolveInvoke: (stepId: string, result: InvokeResult) => this.target.resolveInvoke(stepId, result),
      cancel: (reason: CancelReason) => void this.target.cancel(reason),
      releaseFlow: () => this.target.releaseFlow(),
    };
    try {
      // Entries added while delivering (a cancel's end) are delivered in the same pass.
      for (let next = this.store.nextOutboxEntry(); next; next = this.store.nextOutboxEntry()) {
        // The last entry of a run's end; the invocation delivers it again once it gave its slots back.
        if (next.entry.kind === "release-flow" && this.target.holdsSlots()) break;
        await deliverEntry(this.env, target, next.entry);
        this.store.delivered(next.seq);
      }
    } catch (err) {
      const run = this.store.run();
      createLogger({ run_id: run?.id ?? null, function_id: run?.functionId ?? null }).warn("could not deliver the run's events; will retry", { error: String(err) });
      await this.target.rearm();
    }
  }

  /**
   * Exports the run's trace to the OTLP collector, if its end left one to export: once the
   * collector takes it (or refuses it for good, or an hour after the run's end) the entry goes;
   * else the alarm tries again later (worker/traces/schedule.ts). Never throws.
   */
  exportTrace(): Promise<void> {
    this.exporting ??= this.sendTrace().finally(() => (this.exporting = null));
    return this.exporting;
  }

  private async sendTrace(): Promise<void> {
    // Nothing is read for a run whose Worker exports no traces.
    const config = traceExport(this.env);
    const entry = config && this.store.nextOutboxEntry("trace");
    const run = this.store.run();
    if (!config || !entry || !run) return;
    const logger = createLogger({ run_id: run.id, function_id: run.functionId });
    const endedAt = run.endedAt ?? Date.now();
    let result: ExportResult;
    try {
      result = await sendTrace(config, encodeTrace(runTrace(run, this.store.steps().values())));
    } catch (err) {
      // Encoding failed: it would fail the same way next time.
      result = { type: "refused", reason: String(err) };
    }
    if (result.type === "retry" && !isTraceGivenUp(endedAt, Date.now())) {
      logger.warn("could not export the run's trace; will retry", { error: result.reason });
      return this.target.rearm();
    }
    if (result.type === "retry") logger.warn("gave up exporting the run's trace: the collector did not take it within an hour of the run's end", { error: result.reason });
    if (result.type === "refused") logger.error("the collector refused the run's trace; it is dropped", { error: result.reason });
    this.store.delivered(entry.seq);
    // The alarm was set for the trace's next try: back to the run's next need, if any.
    await this.target.rearm();
  }

  /** When the alarm must try the run's trace again, if one waits to be exported (none read when traces are off). */
  traceRetryAt(now: number): number | undefined {
    const run = this.store.run();
    if (!run?.endedAt || !traceExport(this.env) || !this.store.nextOutboxEntry("trace")) return undefined;
    return nextTraceTry(run.endedAt, now);
  }

  /**
   * Writes the row of a run not over yet to the runs index, unless it has one: a run writes its own
   * row once it is worth one (it waits, queues, or runs a while), and a short run only its end, one
   * write in all. Answers the shard that has the row now (null: none yet, a later point tries again),
   * and the bulk cancellations made since the run began that cover it: no page of theirs saw it.
   */
  async indexOpen(run: ListedRun, status: RunStatus = run.status): Promise<{ indexedOn: number | null; cancellations: CancellationRef[] }> {
    if (run.indexedOn !== null) return { indexedOn: run.indexedOn, cancellations: [] };
    const index = shardIndex(run.id, shardsOf(this.env).length);
    const shard = shardsOf(this.env)[index]!;
    const insert = insertRunStatement(shard, { ...indexEntryOf(run), status });
    // Cancellations are on DB: one batch (one transaction) with the insert when the run's shard is DB too;
    // else the insert first, so that a cancellation made after the read finds the row.
    const cancellationsSince = cancellationsSinceStatement(this.env.DB, run.functionId, run.listedAt, run.startedAt);
    try {
      await recordLayout(this.env);
      let cancellations: D1Result<CancellationRef>;
      if (shard === this.env.DB) cancellations = (await this.env.DB.batch<CancellationRef>([insert, cancellationsSince]))[1]!;
      else {
        await shard.batch([insert]);
        cancellations = await cancellationsSince.all<CancellationRef>();
      }
      return { indexedOn: index, cancellations: cancellations.results };
    } catch (err) {
      createLogger({ run_id: run.id, function_id: run.functionId }).warn("could not write the run's row to the runs index; will try again", { error: String(err) });
      return { indexedOn: null, cancellations: [] };
    }
  }

  async deliverEnd(run: RunRecord): Promise<void> {
    // Written by the object itself, not through the queue: a queue message per run's end was a
    // third of the run's queue bill. The upsert is idempotent and writes the whole row if the run
    // never wrote one; a row written before never overwrites an end.
    try {
      // Its steps and estimated cost ride on the same row (a function's budget and the account's sum them).
      const steps = [...this.store.steps().values()];
      const costUsd = costInDollars(runUsage(run, steps));
      // The shard its open row is on, or the current layout's for a run that wrote none.
      const shards = shardsOf(this.env);
      const shard = shards[run.indexedOn ?? shardIndex(run.id, shards.length)] ?? shardFor(this.env, run.id);
      await recordLayout(this.env);
      await shard.batch([endRunStatement(shard, { ...indexEntryOf(run), endedAt: run.endedAt ?? Date.now(), steps: steps.length, costUsd })]);
      this.endDelivered = true;
    } catch (err) {
      createLogger({ run_id: run.id, function_id: run.functionId }).warn("could not write the run's end to the runs index; will retry", { error: String(err) });
    }
  }
}

/** What a run's row of the runs index is made of. */
type ListedRun = Pick<RunRecord, "id" | "functionId" | "events" | "status" | "startedAt" | "listedAt" | "parent" | "indexedOn">;

/** A bulk cancellation a run listed late must meet. */
export interface CancellationRef {
  id: string;
  expression: string | null;
}

/** A run's row of the runs index, as its object knows it. */
function indexEntryOf(run: ListedRun): RunIndexEntry {
  return {
    runId: run.id,
    functionId: run.functionId,
    eventId: run.events[0]?.id ?? "",
    status: run.status,
    startedAt: run.listedAt,
    ...(run.parent ? { parentRunId: run.parent.runId } : {}),
  };
}
