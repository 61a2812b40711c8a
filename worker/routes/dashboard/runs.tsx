import { callApi, type DashboardContext, type FunctionView, type Page, type RunListing, type RunStatus } from "./api.ts";
import { Empty, Flash, FormActions, PageTitle, RunsTable, RUN_STATUSES } from "./components.tsx";
import { errorPage, hasSession, Layout, renderPage } from "./layout.tsx";

/** The time ranges the filter offers, as how far back they reach. */
const RANGES: { value: string; label: string; ms: number }[] = [
  { value: "15m", label: "Last 15 minutes", ms: 15 * 60_000 },
  { value: "1h", label: "Last hour", ms: 3_600_000 },
  { value: "24h", label: "Last 24 hours", ms: 86_400_000 },
  { value: "7d", label: "Last 7 days", ms: 7 * 86_400_000 },
];

/** What the runs page was asked for, from its query string. */
export interface RunsFilter {
  functionId?: string;
  statuses: RunStatus[];
  range?: string;
  /** `YYYY-MM-DDTHH:MM` in UTC, as a datetime-local input sends it. */
  from?: string;
  to?: string;
  q?: string;
  cursor?: string;
}

export function readRunsFilter(c: DashboardContext): RunsFilter {
  const text = (name: string) => c.req.query(name)?.trim() || undefined;
  const statuses = c.req
    .queries("status")
    ?.flatMap((value) => value.split(","))
    .filter((value): value is RunStatus => (RUN_STATUSES as string[]).includes(value));
  return { functionId: text("function_id"), statuses: statuses ?? [], range: text("range"), from: text("from"), to: text("to"), q: text("q"), cursor: text("cursor") };
}

/** The start window the filter means, as ISO times (a preset range counts back from `now`). */
export function startWindow(filter: RunsFilter, now: number): { after?: string; before?: string } {
  const preset = RANGES.find((range) => range.value === filter.range);
  if (preset) return { after: new Date(now - preset.ms).toISOString() };
  return { after: utcInput(filter.from), before: utcInput(filter.to) };
}

function utcInput(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const ms = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** The `GET /v1/runs` query of a filter (without a search, which asks other routes). */
export function runsApiPath(filter: RunsFilter, now: number, cursor?: string): string {
  const window = startWindow(filter, now);
  const query = new URLSearchParams();
  if (filter.functionId) query.set("function_id", filter.functionId);
  if (filter.statuses.length) query.set("status", filter.statuses.join(","));
  if (window.after) query.set("started_after", window.after);
  if (window.before) query.set("started_before", window.before);
  if (cursor) query.set("cursor", cursor);
  query.set("limit", "50");
  return `/v1/runs?${query}`;
}

/** `GET /runs`: runs newest first, filtered, searchable by run or event id, live on its first page. */
export async function runsPage(c: DashboardContext): Promise<Response> {
  const filter = readRunsFilter(c);
  const now = Date.now();
  const functions = await callApi<{ data: FunctionView[] }>(c, "/v1/functions");
  if (!functions.ok) return errorPage(c, functions, "runs");
  let runs: RunListing[];
  let next: string | null = null;
  if (filter.q) {
    runs = await searchRuns(c, filter.q);
  } else {
    const page = await callApi<Page<RunListing>>(c, runsApiPath(filter, now, filter.cursor));
    if (!page.ok) return errorPage(c, page, "runs");
    runs = page.body.data;
    next = page.body.next_cursor;
  }
  // Only the first page of a listing updates itself: older pages and searches stay as they are.
  const isLive = !filter.q && !filter.cursor;
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title="Runs" active="runs">
      <PageTitle title="Runs" note={isLive ? <span class="muted" data-live-note>Live: updates every 2 s</span> : null} />
      <section class="card">
        <details class="filters-box" id="runs-filters" open>
          <summary>Filter</summary>
          <RunsFilterForm filter={filter} functions={functions.body.data} />
        </details>
        {filter.functionId ? <BulkCancel filter={filter} now={now} /> : null}
      </section>
      <section class="card">
        <div id="runs-live" data-live={isLive ? "runs" : undefined} data-api={isLive ? runsApiPath(filter, now) : undefined}>
          {filter.q && runs.length === 0 ? <Empty>No run and no event has the id “{filter.q}”.</Empty> : <RunsTable runs={runs} />}
        </div>
        <Pager filter={filter} next={next} />
      </section>
    </Layout>,
  );
}

/** A search: the run with that id, or else the runs of the event with that id. */
async function searchRuns(c: DashboardContext, id: string): Promise<RunListing[]> {
  const run = await callApi<{ data: RunListing }>(c, `/v1/runs/${encodeURIComponent(id)}`);
  if (run.ok) return [run.body.data];
  const ofEvent = await callApi<{ data: RunListing[] }>(c, `/v1/events/${encodeURIComponent(id)}/runs`);
  return ofEvent.ok ? [...ofEvent.body.data].reverse() : [];
}

function RunsFilterForm({ filter, functions }: { filter: RunsFilter; functions: FunctionView[] }) {
  const isCustom = !RANGES.some((range) => range.value === filter.range) && Boolean(filter.from || filter.to);
  return (
    <form class="filters" method="get" action="/runs">
      <Choice label="Function" name="function_id" none="All functions" options={functions.map((fn) => ({ value: fn.id, label: fn.id }))} selected={filter.functionId} />
      <fieldset>
        <legend class="muted">Status</legend>
        {RUN_STATUSES.map((status) => (
          <label>
            <input type="checkbox" name="status" value={status} checked={filter.statuses.includes(status)} /> {status}
          </label>
        ))}
      </fieldset>
      <Choice label="Started" name="range" none={isCustom ? "Between (below)" : "Any time"} options={RANGES} selected={filter.range} />
      <label>
        From (UTC)
        <input type="datetime-local" name="from" value={filter.from ?? ""} />
      </label>
      <label>
        To (UTC)
        <input type="datetime-local" name="to" value={filter.to ?? ""} />
      </label>
      <label>
        Run or event id
        <input type="search" name="q" value={filter.q ?? ""} placeholder="01K… or a run id" spellcheck={false} />
      </label>
      <FormActions submit="Apply">
        <a href="/runs">Reset</a>
      </FormActions>
    </form>
  );
}

/** A labelled select: `none` (the empty value) first, then the options, the `selected` one chosen. */
function Choice({ label, name, none, options, selected }: { label: string; name: string; none: string; options: { value: string; label: string }[]; selected?: string }) {
  return (
    <label>
      {label}
      <select name={name}>
        <option value="">{none}</option>
        {options.map((option) => (
          <option value={option.value} selected={option.value === selected}>
            {option.label}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Cancels every unfinished run of the filtered function started in the filtered window. */
function BulkCancel({ filter, now }: { filter: RunsFilter; now: number }) {
  const window = startWindow(filter, now);
  return (
    <div class="actions bulk">
      <button type="button" class="danger" data-action="bulk-cancel" data-function-id={filter.functionId} data-started-after={window.after} data-started-before={window.before}>
        Cancel all unfinished runs of {filter.functionId}
        {window.after || window.before ? " in this time range" : ""}
      </button>
      <Flash id="bulk-flash" />
    </div>
  );
}

function Pager({ filter, next }: { filter: RunsFilter; next: string | null }) {
  if (!filter.cursor && !next) return null;
  const link = (cursor?: string) => {
    const query = new URLSearchParams();
    if (filter.functionId) query.set("function_id", filter.functionId);
    for (const status of filter.statuses) query.append("status", status);
    if (filter.range) query.set("range", filter.range);
    if (filter.from) query.set("from", filter.from);
    if (filter.to) query.set("to", filter.to);
    if (cursor) query.set("cursor", cursor);
    return `/runs?${query}`;
  };
  return (
    <nav class="pager">
      {filter.cursor ? <a href={link()}>← Newest</a> : null}
      {next ? <a href={link(next)}>Older →</a> : null}
    </nav>
  );
}
