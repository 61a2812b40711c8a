import type { StepRecord } from "../../sdk/driver.ts";
import type { PublishedMessage } from "../../sdk/publish.ts";
import { SCHEDULED_TIMER_EVENT } from "../../sdk/function.ts";
import type { PublishView, RunIndexView, RunSummaryView, RunView, StepView } from "./schemas.ts";
import type { RunRecord } from "../runs/RunStore.ts";
import type { RunIndexRow } from "../db/runs.ts";
import type { StuckReason } from "./health.ts";

export type { PublishView, RunIndexView, RunSummaryView, RunView, StepView } from "./schemas.ts";

const STEP_STATUS: Record<StepRecord["status"], StepView["status"]> = {
  completed: "Completed",
  failed: "Failed",
  sleeping: "Sleeping",
  retrying: "Retrying",
  waiting: "Waiting",
};

/** A run that flow control skipped: its row in the runs index is its whole record (no object, no steps). */
export function toSkippedRunView(row: RunIndexRow): RunView {
  return {
    run_id: row.id,
    function_id: row.function_id,
    event_id: row.event_id,
    status: row.status,
    output: null,
    error: null,
    run_started_at: new Date(row.started_at).toISOString(),
    ended_at: row.ended_at ? new Date(row.ended_at).toISOString() : null,
    skip_reason: row.skip_reason,
    steps: [],
    events: [],
  };
}

/** A row of the runs index as a listing shows it: status and times, no output (read from the run's object). */
export function toRunIndexView(row: RunIndexRow): RunIndexView {
  return {
    run_id: row.id,
    function_id: row.function_id,
    event_id: row.event_id,
    status: row.status,
    run_started_at: new Date(row.started_at).toISOString(),
    ended_at: row.ended_at ? new Date(row.ended_at).toISOString() : null,
    ...(row.parent_run_id ? { parent_run_id: row.parent_run_id } : {}),
    ...(row.status === "Skipped" ? { skip_reason: row.skip_reason } : {}),
    ...stuckFields(row),
  };
}

/** The tick's verdict on an unfinished run of the index that is stuck (none for a run that has ended since). */
export function stuckFields(row: Pick<RunIndexRow, "status" | "stuck_reason" | "stuck_since" | "started_at">): { stuck_reason?: StuckReason; stuck_since?: string } {
  if (!row.stuck_reason || (row.status !== "Queued" && row.status !== "Running")) return {};
  return { stuck_reason: row.stuck_reason as StuckReason, stuck_since: new Date(row.stuck_since ?? row.started_at).toISOString() };
}

export function toRunSummaryView(run: RunRecord): RunSummaryView {
  const event = run.events[0];
  return {
    run_id: run.id,
    function_id: run.functionId,
    event_id: run.events[0]?.id ?? "",
    status: run.status,
    output: run.output ?? null,
    error: run.error ?? null,
    run_started_at: new Date(run.startedAt).toISOString(),
    ended_at: run.endedAt ? new Date(run.endedAt).toISOString() : null,
    ...(event?.name === SCHEDULED_TIMER_EVENT ? { scheduled_at: new Date(event.ts).toISOString() } : {}),
    ...(run.parent ? { parent_run_id: run.parent.runId } : {}),
  };
}

export function toRunView(run: RunRecord, steps: StepRecord[], now = Date.now()): RunView {
  const repairs = run.repairs?.map((repair) => ({ action: repair.action, at: new Date(repair.at).toISOString(), ...(repair.detail ? { detail: repair.detail } : {}) }));
  return { ...toRunSummaryView(run), events: run.events, steps: steps.map((step) => toStepView(step, now)), ...(repairs?.length ? { repairs } : {}) };
}

export function toStepView(step: StepRecord, now = Date.now()): StepView {
  // A sleep is over once its wake time has passed; the driver does not write that down.
  const hasWoken = step.status === "sleeping" && step.wakeAt !== undefined && step.wakeAt <= now;
  const endedAt = hasWoken ? step.wakeAt : step.endedAt;
  return {
    id: step.id,
    name: step.name,
    kind: step.kind,
    status: hasWoken ? "Completed" : STEP_STATUS[step.status],
    attempts: hasWoken ? 1 : step.attempts,
    output: step.output ?? null,
    error: step.error ?? null,
    wake_at: step.wakeAt !== undefined ? new Date(step.wakeAt).toISOString() : null,
    failed_attempts: (step.failedAttempts ?? []).map((attempt) => ({
      error: attempt.error,
      started_at: new Date(attempt.startedAt).toISOString(),
      ended_at: new Date(attempt.endedAt).toISOString(),
    })),
    started_at: new Date(step.startedAt).toISOString(),
    ended_at: endedAt ? new Date(endedAt).toISOString() : null,
  };
}

/** A `publish` step as the message it stored. */
export function toPublishView(step: StepRecord): PublishView {
  const { topic, data } = step.output as PublishedMessage;
  return { id: step.id, topic, data, at: new Date(step.endedAt ?? step.startedAt).toISOString() };
}
