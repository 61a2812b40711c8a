import { callApi, type AppView, type DashboardContext, type FunctionView } from "./api.ts";
import { RunsChart } from "./chart.tsx";
import { CostPerDay, PauseReason } from "./cost.tsx";
import { Empty, Flash, formatDuration, FormActions, PageTitle, StatusBadge, Time, RUN_STATUSES } from "./components.tsx";
import { errorPage, hasSession, Layout, renderPage } from "./layout.tsx";

/** `GET /`: every registered function, with its triggers, settings, last day's runs and actions. */
export async function functionsPage(c: DashboardContext): Promise<Response> {
  const [answer, apps] = await Promise.all([callApi<{ data: FunctionView[] }>(c, "/v1/functions"), callApi<{ data: AppView[] }>(c, "/v1/apps")]);
  if (!answer.ok) return errorPage(c, answer, "functions");
  // The synced app of each remote function; without the apps (a failed read) the functions are listed unmarked.
  const appOf = new Map(apps.ok ? apps.body.data.flatMap((app) => app.functions.map((fn) => [fn.id, app.id] as const)) : []);
  const now = Date.now();
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title="Functions" active="functions">
      <PageTitle title="Functions" note={<span class="muted">{answer.body.data.length} registered</span>} />
      {answer.body.data.length === 0 ? <Empty>No functions are registered.</Empty> : null}
      <div class="fn-list">
        {answer.body.data.map((fn) => (
          <FunctionCard fn={fn} now={now} appId={appOf.get(fn.id)} />
        ))}
      </div>
    </Layout>,
  );
}

function FunctionCard({ fn, now, appId }: { fn: FunctionView; now: number; appId?: string }) {
  return (
    <article class="card fn" id={`fn-${fn.id}`} data-function-id={fn.id}>
      <header class="card-head">
        <div>
          <h2>{fn.name}</h2>
          {fn.name === fn.id ? null : <code class="muted">{fn.id}</code>} {fn.paused ? <span class="badge status-paused">Paused</span> : null}{" "}
          {appId ? (
            <a class="badge" href={`/apps#app-${encodeURIComponent(appId)}`} title="A function of an app on the inngest SDK" data-app-id={appId}>
              app: {appId}
            </a>
          ) : null}
          <PauseReason fn={fn} />
        </div>
        <a href={`/runs?function_id=${encodeURIComponent(fn.id)}`}>Runs →</a>
      </header>
      <div class="fn-grid">
        <section>
          <h3>Triggers</h3>
          <TriggerList fn={fn} />
        </section>
        <section>
          <h3>Settings</h3>
          <SettingsList config={fn.config} />
        </section>
        <section>
          <h3>Last 24 hours</h3>
          <StatusCounts fn={fn} />
          <CostPerDay fn={fn} />
          {fn.stats ? <RunsChart hours={fn.stats.hours} now={now} /> : null}
        </section>
      </div>
      <FunctionActions fn={fn} />
    </article>
  );
}

/** Event triggers with their `if`, and crons with when they fire next. */
function TriggerList({ fn }: { fn: FunctionView }) {
  return (
    <ul>
      {fn.triggers.map((trigger) =>
        "event" in trigger ? (
          <li>
            <span class="badge">event</span> <a href={`/events?name=${encodeURIComponent(trigger.event)}`}>{trigger.event}</a>
            {trigger.if ? (
              <div>
                <code class="muted">if {trigger.if}</code>
              </div>
            ) : null}
          </li>
        ) : (
          <li>
            <span class="badge">cron</span> <code>{trigger.cron}</code>
            <div class="muted">
              next: <Time at={fn.crons.find((cron) => cron.cron === trigger.cron)?.next_run_at} />
            </div>
          </li>
        ),
      )}
    </ul>
  );
}

// The options that change when and how often runs start, shown first.
const FLOW_KEYS = ["concurrency", "throttle", "rateLimit", "debounce", "priority", "batchEvents", "idempotency", "singleton", "budget"];

/** The function's configuration: flow control first, then retries, timeouts and the rest. */
function SettingsList({ config }: { config: Record<string, unknown> }) {
  const keys = Object.keys(config).filter((key) => config[key] !== undefined);
  keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (keys.length === 0) return <Empty>Defaults.</Empty>;
  return (
    <dl>
      {keys.map((key) => (
        <>
          <dt>{key}</dt>
          <dd>
            <code>{settingText(config[key], key)}</code>
          </dd>
        </>
      ))}
    </dl>
  );
}

function rank(key: string): number {
  const flow = FLOW_KEYS.indexOf(key);
  return flow === -1 ? FLOW_KEYS.length : flow;
}

// Settings whose numbers are durations in ms (the config holds them parsed): shown as durations.
const DURATION_KEYS = new Set(["stepTimeout", "period", "timeout", "start", "finish"]);

function settingText(value: unknown, key = ""): string {
  if (typeof value === "number" && DURATION_KEYS.has(key)) return formatDuration(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value, (inner, v) => (typeof v === "number" && DURATION_KEYS.has(inner) ? formatDuration(v) : v));
}

/** Runs of the last day by status, each linking to those runs. */
function StatusCounts({ fn }: { fn: FunctionView }) {
  const byStatus = fn.stats?.by_status ?? {};
  const present = RUN_STATUSES.filter((status) => (byStatus[status] ?? 0) > 0);
  if (!fn.stats) return <p class="muted">Counts not available.</p>;
  if (present.length === 0) return <p class="muted">No runs.</p>;
  return (
    <div class="counts">
      {present.map((status) => (
        <a href={`/runs?function_id=${encodeURIComponent(fn.id)}&status=${status}`}>
          <StatusBadge status={`${status} ${byStatus[status]}`} />
        </a>
      ))}
    </div>
  );
}

/** Invoke with a JSON payload, Run now (cron functions), pause / resume: app.js sends them to /v1. */
function FunctionActions({ fn }: { fn: FunctionView }) {
  return (
    <footer class="fn-foot">
      <details class="invoke" id={`invoke-${fn.id}`}>
        <summary>Invoke…</summary>
        <form data-form="invoke" data-function-id={fn.id}>
          <label>
            Event data (a JSON object)
            <textarea name="data" spellcheck={false} data-json="object" rows={4}>
              {"{}"}
            </textarea>
          </label>
          <p class="hint" data-json-hint></p>
          <FormActions submit="Invoke" />
        </form>
      </details>
      <div class="actions">
        {fn.crons.length > 0 ? (
          <button type="button" data-action="trigger" data-function-id={fn.id}>
            Run now
          </button>
        ) : null}
        {fn.paused ? (
          <button type="button" data-action="resume" data-function-id={fn.id}>
            Resume
          </button>
        ) : (
          <button type="button" data-action="pause" data-function-id={fn.id}>
            Pause
          </button>
        )}
      </div>
      <Flash />
    </footer>
  );
}
