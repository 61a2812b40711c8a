import type { HealthView, StuckReason } from "../../views/health.ts";
import { STUCK_REASONS } from "../../views/health.ts";
import { callApi, type DashboardContext, type FunctionView, type Page, type RunListing } from "./api.ts";
import { Empty, Flash, ListTable, PageTitle, shortId, Time } from "./components.tsx";
import { errorPage, hasSession, Layout, renderPage } from "./layout.tsx";

/** What each reason means, as the page says it (docs/production.md "Stuck runs"). */
export const STUCK_LABELS: Record<StuckReason, string> = {
  function_missing: "Function not registered",
  no_alarm: "No alarm",
  overdue: "Overdue",
  retrying: "Retrying too long",
};

/**
 * `GET /health`: stuck runs by reason, as the tick last found them, each with its reason and a
 * checkbox; bulk actions (wake, cancel, rerun, re-point) act on the checked ones through
 * `POST /v1/runs/repair`. `?reason=` keeps one reason; `?cursor=` pages on.
 */
export async function healthPage(c: DashboardContext): Promise<Response> {
  const reason = STUCK_REASONS.find((r) => r === c.req.query("reason"));
  const cursor = c.req.query("cursor");
  const query = new URLSearchParams({ stuck: reason ?? "any", limit: "100", ...(cursor ? { cursor } : {}) });
  const [health, runs, functions] = await Promise.all([
    callApi<{ data: HealthView }>(c, "/v1/health"),
    callApi<Page<RunListing>>(c, `/v1/runs?${query}`),
    callApi<{ data: FunctionView[] }>(c, "/v1/functions"),
  ]);
  if (!health.ok) return errorPage(c, health, "health");
  if (!runs.ok) return errorPage(c, runs, "health");
  if (!functions.ok) return errorPage(c, functions, "health");
  const next = runs.body.next_cursor;
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title="Health" active="health">
      <PageTitle title="Health" note={<span class="muted">Stuck runs as the tick last found them (it checks unfinished runs every minute)</span>} />
      <section class="card" id="stuck-counts">
        <ul class="plain stuck-counts">
          <li>
            <a href="/health" aria-current={reason ? undefined : "true"}>All stuck runs</a> <strong data-count="total">{health.body.data.total_stuck}</strong>
          </li>
          {STUCK_REASONS.map((r) => (
            <li>
              <a href={`/health?reason=${r}`} aria-current={r === reason ? "true" : undefined}>{STUCK_LABELS[r]}</a> <strong data-count={r}>{health.body.data.stuck[r]}</strong>
            </li>
          ))}
        </ul>
      </section>
      <section class="card">
        <BulkRepair functions={functions.body.data} />
        <Flash id="repair-flash" />
        <div id="stuck-live">
          <StuckTable runs={runs.body.data} />
        </div>
        {next || cursor ? (
          <nav class="pager">
            {cursor ? <a href={reason ? `/health?reason=${reason}` : "/health"}>← First page</a> : null}
            {next ? <a href={`/health?${new URLSearchParams({ ...(reason ? { reason } : {}), cursor: next })}`}>More →</a> : null}
          </nav>
        ) : null}
      </section>
    </Layout>,
  );
}

/** The bulk actions over the checked runs: app.js posts them to `POST /v1/runs/repair`. */
function BulkRepair({ functions }: { functions: FunctionView[] }) {
  return (
    <div class="actions bulk-repair">
      <button type="button" data-action="repair" data-repair="wake">Wake now</button>
      <button type="button" data-action="repair" data-repair="rerun">Rerun</button>
      <button type="button" class="danger" data-action="repair" data-repair="cancel">Cancel</button>
      <label>
        Re-point to{" "}
        <select name="repoint-function" data-repoint-target>
          {functions.map((fn) => (
            <option value={fn.id}>{fn.id}</option>
          ))}
        </select>
      </label>
      <button type="button" data-action="repair" data-repair="repoint">Re-point</button>
    </div>
  );
}

function StuckTable({ runs }: { runs: RunListing[] }) {
  if (runs.length === 0) return <Empty>No stuck runs: every unfinished run will move on its own.</Empty>;
  return (
    <ListTable
      class="runs stuck"
      columns={["", "Run", "Function", "Reason", "Stuck since"]}
      items={runs}
      empty=""
      row={(run) => (
        <tr data-run-id={run.run_id} data-status={run.status} data-stuck-reason={run.stuck_reason}>
          <td>
            <input type="checkbox" name="run" value={run.run_id} aria-label={`select run ${run.run_id}`} />
          </td>
          <td>
            <a class="mono" href={`/runs/${encodeURIComponent(run.run_id)}`} title={run.run_id}>{shortId(run.run_id)}</a>
          </td>
          <td>{run.function_id}</td>
          <td class="stuck-reason">{run.stuck_reason ? STUCK_LABELS[run.stuck_reason] : ""}</td>
          <td>
            <Time at={run.stuck_since} relative />
          </td>
        </tr>
      )}
    />
  );
}
