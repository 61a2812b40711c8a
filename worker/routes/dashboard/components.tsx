import type { Child } from "hono/jsx";
import type { RunListing, RunStatus, SerializedError } from "./api.ts";
import { isSerializedShape } from "../../../sdk/errors/serialize.ts";

// Small pieces every page uses. Hono JSX escapes every text child and attribute value: data from
// events, outputs and errors is only ever passed as children or attributes, never as raw HTML.

/** A run's or step's status as a coloured label. */
export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status.toLowerCase()}`}>{status}</span>;
}

/** A time: UTC text on the server, the viewer's local time once app.js has run (`relative`: "3 min ago"; "both": both). */
export function Time({ at, relative }: { at: string | number | null | undefined; relative?: boolean | "both" }) {
  if (at === null || at === undefined) return <span class="muted">—</span>;
  const iso = new Date(at).toISOString();
  return (
    <time datetime={iso} data-relative={relative === "both" ? "both" : relative ? "" : undefined} title={iso}>
      {iso.replace("T", " ").replace(/\.\d+Z$/, " UTC")}
    </time>
  );
}

/** Milliseconds as a short duration: 850 ms, 12.4 s, 3 min 5 s, 2 h 10 min. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const [big, bigUnit, small, smallUnit] = ms < 3_600_000 ? [Math.floor(ms / 60_000), "min", Math.round((ms % 60_000) / 1000), "s"] : [Math.floor(ms / 3_600_000), "h", Math.round((ms % 3_600_000) / 60_000), "min"];
  return small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`;
}

/** From `start` to `end` (or to now, still going). */
export function Duration({ start, end }: { start: string; end: string | null }) {
  const ms = (end ? Date.parse(end) : Date.now()) - Date.parse(start);
  return <span class={end ? "" : "muted"}>{formatDuration(ms)}{end ? "" : " so far"}</span>;
}

/** A JSON value, pretty-printed, as text. */
export function Json({ value, id }: { value: unknown; id?: string }) {
  return <pre class="json" id={id}>{prettyJson(value)}</pre>;
}

export function prettyJson(value: unknown): string {
  return value === undefined ? "undefined" : JSON.stringify(value, null, 2);
}

/** A one-line preview of a JSON value, cut to `max` characters. */
export function jsonPreview(value: unknown, max = 80): string {
  const text = JSON.stringify(value) ?? "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** An error's name and message, its own fields, its stack behind a disclosure, then its cause chain. */
export function ErrorBlock({ error }: { error: SerializedError }) {
  const { name: _name, message: _message, stack: _stack, cause, ...fields } = error;
  return (
    <div class="error-block">
      <p class="error-message">
        <strong>{error.name}</strong>: {error.message}
      </p>
      {Object.keys(fields).length > 0 ? <pre class="error-fields">{prettyJson(fields)}</pre> : null}
      {error.stack ? (
        <details class="stack">
          <summary>Stack</summary>
          <pre>{error.stack}</pre>
        </details>
      ) : null}
      {cause !== undefined ? <CauseBlock cause={cause} /> : null}
    </div>
  );
}

/** "Caused by" and the cause: an error of the same shape, or the value it was. */
function CauseBlock({ cause }: { cause: unknown }) {
  return (
    <div class="error-cause">
      <p class="muted">Caused by</p>
      {isSerializedShape(cause) ? <ErrorBlock error={cause} /> : <pre>{prettyJson(cause)}</pre>}
    </div>
  );
}

/** A titled section. */
export function Section({ title, children, id, actions }: { title: string; children: Child; id?: string; actions?: Child }) {
  return (
    <section class="card" id={id}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions ? <div class="actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** Shown where a list has nothing in it. */
export function Empty({ children }: { children: Child }) {
  return <p class="empty">{children}</p>;
}

/** A line for the outcome of an action (app.js writes into the one nearest the control that acted). */
export function Flash({ id }: { id?: string }) {
  return <p class="flash" id={id} role="status" aria-live="polite"></p>;
}

/** A page's heading, and a note beside it (a count, whether it is live). */
export function PageTitle({ title, note }: { title: string; note?: Child }) {
  return (
    <div class="page-head">
      <h1>{title}</h1>
      {note}
    </div>
  );
}

/** A page's or card's heading and, beneath it, the id or address of what it names. */
export function IdHeading({ level = 1, id, children }: { level?: 1 | 2; id: string; children: Child }) {
  return (
    <div>
      {level === 1 ? <h1>{children}</h1> : <h2>{children}</h2>}
      <code class="muted">{id}</code>
    </div>
  );
}

/** A fact of a detail list: its name, its value, and a class for the value's cell. */
export type Fact = [name: string, value: Child, valueClass?: string];

/** Facts about one thing (an event, a run, an app), in order; a `null` stands for a fact it does not have. */
export function Facts({ facts }: { facts: (Fact | null)[] }) {
  return (
    <dl class="meta">
      {facts.map((fact) =>
        fact ? (
          <>
            <dt>{fact[0]}</dt>
            <dd class={fact[2]}>{fact[1]}</dd>
          </>
        ) : null,
      )}
    </dl>
  );
}

/** A form's submit button, and what stands beside it (a link, a flash line). */
export function FormActions({ submit, children }: { submit: string; children?: Child }) {
  return (
    <div class="actions">
      <button class="primary" type="submit">
        {submit}
      </button>
      {children}
    </div>
  );
}

/** A listing as a table: a head with its columns (`null`: a column left out), a row per item, or `empty` when there are none. */
export function ListTable<T>({ class: name, columns, items, row, empty }: { class: string; columns: (string | null)[]; items: T[]; row: (item: T) => Child; empty: string }) {
  if (items.length === 0) return <Empty>{empty}</Empty>;
  return (
    <div class="table-wrap">
      <table class={name}>
        <thead>
          <tr>{columns.map((column) => (column === null ? null : <th>{column}</th>))}</tr>
        </thead>
        <tbody>{items.map(row)}</tbody>
      </table>
    </div>
  );
}

/** A table of runs: newest first, as the API listed them. Each row carries its id and status for app.js's live check. */
export function RunsTable({ runs, showFunction = true, showEvent = true }: { runs: RunListing[]; showFunction?: boolean; showEvent?: boolean }) {
  return (
    <ListTable
      class="runs"
      columns={["Status", "Run", showFunction ? "Function" : null, showEvent ? "Event" : null, "Started", "Duration"]}
      items={runs}
      empty="No runs."
      row={(run) => (
        <tr data-run-id={run.run_id} data-status={run.status} data-event-id={run.event_id}>
          <td>
            <StatusBadge status={run.status} />
          </td>
          <td>
            <a class="mono" href={`/runs/${encodeURIComponent(run.run_id)}`} title={run.run_id}>{shortId(run.run_id)}</a>
          </td>
          {showFunction ? (
            <td>
              <a href={`/runs?function_id=${encodeURIComponent(run.function_id)}`}>{run.function_id}</a>
            </td>
          ) : null}
          {showEvent ? (
            <td>
              <a class="mono" href={`/events/${encodeURIComponent(run.event_id)}`} title={run.event_id}>{shortId(run.event_id)}</a>
            </td>
          ) : null}
          <td>
            <Time at={run.run_started_at} relative />
          </td>
          <td>{run.status === "Skipped" ? <span class="muted">{run.skip_reason ?? "skipped"}</span> : <Duration start={run.run_started_at} end={run.ended_at} />}</td>
        </tr>
      )}
    />
  );
}

/**
 * An id short enough for a table cell: its head and tail, since ULIDs (run ids, event ids) of the same
 * moment share their first ten characters. The full id stays in the link and its title.
 */
export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 4)}…${id.slice(-8)}` : id;
}

export const RUN_STATUSES: RunStatus[] = ["Queued", "Running", "Completed", "Failed", "Cancelled", "Skipped"];
