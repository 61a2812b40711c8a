import { callApi, isFinal, type DashboardContext, type FunctionView, type RunDetail, type TriggerEventView } from "./api.ts";
import { STUCK_LABELS } from "./health.tsx";
import { Duration, Empty, ErrorBlock, Facts, Flash, IdHeading, Json, Section, StatusBadge, Time } from "./components.tsx";
import { errorPage, hasSession, Layout, renderPage } from "./layout.tsx";
import { Timeline, timelineWindow } from "./timeline.tsx";

/**
 * What app.js compares to decide the page is out of date: the run's status and each step's status
 * and attempts. app.js computes the same string from `GET /v1/runs/:id` (keep the two in step).
 */
export function runSignature(run: Pick<RunDetail, "status" | "steps">): string {
  return `${run.status};${run.steps.map((step) => `${step.id}:${step.status}:${step.attempts}`).join(",")}`;
}

/** `GET /runs/:id`: a run's timeline, trigger events, parent and children, output or error, and actions. */
export async function runPage(c: DashboardContext): Promise<Response> {
  const runId = c.req.param("runId") ?? "";
  const answer = await callApi<{ data: RunDetail }>(c, `/v1/runs/${encodeURIComponent(runId)}`);
  if (!answer.ok) return errorPage(c, answer, "runs");
  const run = answer.body.data;
  const events = run.events;
  // The functions a run not over yet may be re-pointed to.
  const functions = isFinal(run.status) ? null : await callApi<{ data: FunctionView[] }>(c, "/v1/functions");
  const final = isFinal(run.status);
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title={`Run ${run.run_id}`} active="runs">
      <div id="run-live" class="stack-col" data-live={final ? undefined : "run"} data-run-id={run.run_id} data-signature={runSignature(run)}>
        <div class="page-head">
          <IdHeading id={run.run_id}>
            {run.function_id} <StatusBadge status={run.status} />
            {run.stuck_reason ? (
              <span class="badge stuck" title={`stuck since ${run.stuck_since ?? ""}: see the Health page`}>
                stuck: {STUCK_LABELS[run.stuck_reason]}
              </span>
            ) : null}
          </IdHeading>
          <RunActions run={run} functions={functions?.ok ? functions.body.data.map((fn) => fn.id) : []} />
        </div>
        <Flash id="run-flash" />
        <div class="two-col">
          <div class="stack-col">
            <Section title="Timeline" id="timeline">
              <Timeline runId={run.run_id} steps={run.steps} window={timelineWindow(run.run_started_at, run.ended_at, run.steps, Date.now())} canRerun={final && run.status !== "Skipped"} />
            </Section>
            <RunOutcome run={run} />
            <Repairs run={run} />
          </div>
          <div class="stack-col">
            <RunFacts run={run} />
            <TriggerEvents events={events} />
          </div>
        </div>
      </div>
    </Layout>,
  );
}

/** Cancel, wake or re-point while it can still change (docs/production.md "Stuck runs"); rerun (a new run from the same event) once it has ended. */
function RunActions({ run, functions }: { run: RunDetail; functions: string[] }) {
  const final = isFinal(run.status);
  return (
    <div class="actions">
      {final ? null : (
        <>
          <button type="button" data-action="repair" data-repair="wake" data-run-id={run.run_id}>
            Wake now
          </button>
          <select name="repoint-function" data-repoint-target aria-label="function to re-point the run to">
            {functions.map((id) => (
              <option value={id} selected={id === run.function_id}>{id}</option>
            ))}
          </select>
          <button type="button" data-action="repair" data-repair="repoint" data-run-id={run.run_id}>
            Re-point
          </button>
          <button type="button" class="danger" data-action="cancel-run" data-run-id={run.run_id}>
            Cancel
          </button>
        </>
      )}
      {final && run.status !== "Skipped" ? (
        <button type="button" class="primary" data-action="rerun" data-run-id={run.run_id}>
          Rerun
        </button>
      ) : null}
    </div>
  );
}

/** What operators did to move the run on (wake, re-point, cancel, rerun), oldest first. */
function Repairs({ run }: { run: RunDetail }) {
  if (!run.repairs?.length) return null;
  return (
    <Section title="Repairs" id="repairs">
      <ol class="plain repairs">
        {run.repairs.map((repair) => (
          <li data-repair={repair.action}>
            <Time at={repair.at} /> <strong>{repair.action}</strong>{" "}
            {repair.action === "rerun" && repair.detail ? (
              <a class="mono" href={`/runs/${encodeURIComponent(repair.detail)}`}>{repair.detail}</a>
            ) : (
              <span class="mono">{repair.detail ?? ""}</span>
            )}
          </li>
        ))}
      </ol>
    </Section>
  );
}

function RunOutcome({ run }: { run: RunDetail }) {
  if (run.status === "Completed") {
    return (
      <Section title="Output" id="output">
        <Json value={run.output} id="run-output" />
      </Section>
    );
  }
  if (run.status === "Failed" && run.error) {
    return (
      <Section title="Error" id="error">
        <ErrorBlock error={run.error} />
      </Section>
    );
  }
  if (run.status === "Skipped") {
    return (
      <Section title="Skipped">
        <p>{run.skip_reason ?? "Flow control started no run for this event."}</p>
      </Section>
    );
  }
  return null;
}

/** When it started and ended, what triggered it, and the runs around it. */
function RunFacts({ run }: { run: RunDetail }) {
  return (
    <Section title="Run">
      <Facts
        facts={[
          ["Function", <a href={`/runs?function_id=${encodeURIComponent(run.function_id)}`}>{run.function_id}</a>],
          ["Started", <Time at={run.run_started_at} />],
          ["Ended", <Time at={run.ended_at} />],
          ["Duration", <Duration start={run.run_started_at} end={run.ended_at} />],
          run.scheduled_at ? ["Scheduled for", <Time at={run.scheduled_at} />] : null,
          run.parent_run_id ? ["Parent run", <a class="mono" href={`/runs/${encodeURIComponent(run.parent_run_id)}`}>{run.parent_run_id}</a>] : null,
          ["Child runs", <ChildRuns run={run} />],
        ]}
      />
    </Section>
  );
}

/** The runs it started with step.invoke, each with its status. */
function ChildRuns({ run }: { run: RunDetail }) {
  if (run.children.length === 0) return <span class="muted">none</span>;
  return (
    <ul class="plain">
      {run.children.map((child) => (
        <li>
          <a class="mono" href={`/runs/${encodeURIComponent(child.run_id)}`}>{child.function_id}</a> <StatusBadge status={child.status} />
        </li>
      ))}
    </ul>
  );
}

/** The event(s) that started the run, with their payloads as text. */
function TriggerEvents({ events }: { events: TriggerEventView[] }) {
  return (
    <Section title={events.length > 1 ? `Trigger events (${events.length})` : "Trigger event"} id="events">
      {events.length === 0 ? <Empty>This event is not in the event log.</Empty> : null}
      {events.map((event, i) => (
        <div class="event">
          <p>
            <strong>{event.name}</strong>{" "}
            <a class="mono" href={`/events/${encodeURIComponent(event.id)}`}>
              {event.id}
            </a>
          </p>
          <details id={`event-${i}-data`} open={i === 0}>
            <summary>Payload</summary>
            <Json value={event.data} />
          </details>
        </div>
      ))}
    </Section>
  );
}
