import type { StepView } from "./api.ts";
import { Empty, ErrorBlock, formatDuration, Json, StatusBadge, Time } from "./components.tsx";

const TRACK_WIDTH = 1000;

/** The span of time a run's timeline draws: from its start to its end, or to now while it goes on. */
export interface TimeWindow {
  start: number;
  end: number;
}

export function timelineWindow(startedAt: string, endedAt: string | null, steps: StepView[], now: number): TimeWindow {
  const start = Date.parse(startedAt);
  const ends = steps.flatMap((step) => {
    const end = stepEnd(step);
    return end === null ? [] : [end];
  });
  const end = Math.max(endedAt ? Date.parse(endedAt) : now, ...ends, start + 1);
  return { start, end };
}

/** When a step began: its first attempt (the step's own start is that of its latest attempt). */
export function stepStart(step: StepView): number {
  return Math.min(Date.parse(step.started_at), ...step.failed_attempts.map((attempt) => Date.parse(attempt.started_at)));
}

/** When a step ended (null while it goes on): after its last attempt. */
export function stepEnd(step: StepView): number | null {
  if (!step.ended_at) return null;
  return Math.max(Date.parse(step.ended_at), ...step.failed_attempts.map((attempt) => Date.parse(attempt.ended_at)));
}

/** Where `time` falls on a track `TRACK_WIDTH` wide, clamped to it. */
function xOf(window: TimeWindow, time: number): number {
  const x = ((time - window.start) / (window.end - window.start)) * TRACK_WIDTH;
  return Math.min(TRACK_WIDTH, Math.max(0, x));
}

/**
 * The steps of a run in the order they started, each with its status, a bar of its time on the run's
 * time axis (failed attempts in red over it), every attempt's error and duration, its output, and
 * until when it sleeps or waits. `canRerun` adds "Re-run from here" to each step.
 */
export function Timeline({ runId, steps, window, canRerun }: { runId: string; steps: StepView[]; window: TimeWindow; canRerun: boolean }) {
  if (steps.length === 0) return <Empty>No steps yet.</Empty>;
  const ordered = [...steps].sort((a, b) => stepStart(a) - stepStart(b));
  return (
    <ol class="timeline">
      {ordered.map((step, index) => (
        <StepItem runId={runId} step={step} index={index} window={window} canRerun={canRerun} />
      ))}
    </ol>
  );
}

// How each step tool other than step.run is labelled on the timeline.
const KIND_LABELS: Record<StepView["kind"], string> = {
  run: "run",
  sleep: "sleep",
  sendEvent: "send event",
  waitForEvent: "wait for event",
  invoke: "invoke",
  publish: "publish",
  fetch: "fetch",
};

function StepItem({ runId, step, index, window, canRerun }: { runId: string; step: StepView; index: number; window: TimeWindow; canRerun: boolean }) {
  const isPending = step.status === "Sleeping" || step.status === "Waiting" || step.status === "Retrying";
  const end = stepEnd(step);
  return (
    <li class="step" data-step-id={step.id} data-step-name={step.name} data-step-status={step.status}>
      <div class="step-head">
        <span class="name">{step.name}</span>
        {step.kind === "run" ? null : <span class="kind">{KIND_LABELS[step.kind]}</span>}
        <StatusBadge status={step.status} />
        {step.attempts > 0 ? (
          <span class="muted">
            {step.attempts} {step.attempts === 1 ? "attempt" : "attempts"}
          </span>
        ) : null}
        {end !== null ? <span class="muted">{formatDuration(end - stepStart(step))}</span> : null}
        <span class="spacer"></span>
        {canRerun ? (
          <button type="button" data-action="rerun" data-run-id={runId} data-from-step={step.id} title="A new run from the same event that reuses the outputs of the steps before this one">
            Re-run from here
          </button>
        ) : null}
      </div>
      <StepTrack step={step} window={window} />
      {isPending && step.wake_at ? <WakeLine step={step} /> : null}
      <AttemptList step={step} index={index} />
    </li>
  );
}

/** When a sleep, wait or retry is due. */
function WakeLine({ step }: { step: StepView }) {
  const what = step.status === "Sleeping" ? "Sleeps until" : step.status === "Waiting" ? "Waits until" : "Next attempt at";
  return (
    <p class="wake">
      {what} <Time at={step.wake_at} relative="both" />
    </p>
  );
}

/** The step's bar on the run's time axis, with each failed attempt over it. */
function StepTrack({ step, window }: { step: StepView; window: TimeWindow }) {
  const start = xOf(window, stepStart(step));
  const end = xOf(window, stepEnd(step) ?? window.end);
  return (
    <svg class="track" viewBox={`0 0 ${TRACK_WIDTH} 12`} preserveAspectRatio="none" aria-hidden="true">
      <rect class="lane" x="0" y="0" width={TRACK_WIDTH} height="12" rx="2" />
      <rect class={`span ${step.status.toLowerCase()}`} x={start} y="0" width={Math.max(2, end - start)} height="12" rx="2" />
      {step.failed_attempts.map((attempt) => {
        const from = xOf(window, Date.parse(attempt.started_at));
        const to = xOf(window, Date.parse(attempt.ended_at));
        return <rect class="attempt-failed" x={Math.min(from, TRACK_WIDTH - 6)} y="1" width={Math.max(6, to - from)} height="10" />;
      })}
    </svg>
  );
}

/** Every failed attempt with its own error and duration, then how the step ended and its output. */
function AttemptList({ step, index }: { step: StepView; index: number }) {
  const failedCount = step.failed_attempts.length;
  // A failed step's final error is its last failed attempt; show it apart only if no attempt recorded it.
  const showStepError = step.error !== null && failedCount === 0;
  return (
    <ul class="attempts">
      {step.failed_attempts.map((attempt, i) => (
        <li class="failed">
          <span class="muted">
            Attempt {i + 1} failed after {formatDuration(Date.parse(attempt.ended_at) - Date.parse(attempt.started_at))}, at <Time at={attempt.ended_at} />
          </span>
          <ErrorBlock error={attempt.error} />
        </li>
      ))}
      {showStepError && step.error ? (
        <li class="failed">
          <ErrorBlock error={step.error} />
        </li>
      ) : null}
      {step.status === "Completed" ? (
        <li class="ok">
          <details id={`step-${index}-output`}>
            <summary>
              {step.kind === "publish" ? "Published" : failedCount > 0 ? `Attempt ${failedCount + 1} completed: output` : "Output"}
            </summary>
            <Json value={step.output} />
          </details>
        </li>
      ) : null}
    </ul>
  );
}
