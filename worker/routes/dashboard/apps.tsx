import { callApi, type AppView, type DashboardContext } from "./api.ts";
import { Empty, Facts, Flash, FormActions, IdHeading, PageTitle, Section, Time } from "./components.tsx";
import { errorPage, hasSession, Layout, renderPage } from "./layout.tsx";

/** `GET /apps`: the apps served by the `inngest` SDK whose functions run here, and a form to add one. */
export async function appsPage(c: DashboardContext): Promise<Response> {
  const answer = await callApi<{ data: AppView[] }>(c, "/v1/apps");
  if (!answer.ok) return errorPage(c, answer, "apps");
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title="Apps" active="apps">
      <PageTitle title="Apps" note={<span class="muted">{answer.body.data.length} synced</span>} />
      <AddAppForm />
      <div id="apps-live" class="fn-list">
        {answer.body.data.length === 0 ? <Empty>No apps are synced. Add one above: its functions join the ones of this Worker.</Empty> : null}
        {answer.body.data.map((app) => (
          <AppCard app={app} />
        ))}
      </div>
    </Layout>,
  );
}

/** "Add app": app.js sends the URL to `POST /v1/apps`, which syncs the app (a `PUT` to that URL) before answering. */
function AddAppForm() {
  return (
    <Section title="Add app" id="add-app">
      <form data-form="add-app" class="add-app">
        <label for="app-url">
          The URL where the app serves the <code>inngest</code> SDK (its <code>serve()</code> handler)
        </label>
        <input id="app-url" name="url" type="url" required spellcheck={false} placeholder="http://127.0.0.1:3000/api/inngest" />
        <FormActions submit="Add app">
          <Flash id="add-app-flash" />
        </FormActions>
      </form>
    </Section>
  );
}

/** One app: where it is served, its SDK, its last sync (and the last failed one), its functions, and what can be done to it. */
export function AppCard({ app }: { app: AppView }) {
  return (
    <article class="card app" id={`app-${app.id}`} data-app-id={app.id}>
      <header class="card-head">
        <IdHeading level={2} id={app.url}>{app.id}</IdHeading>
      </header>
      <Facts
        facts={[
          ["SDK", app.sdk ?? <span class="muted">—</span>],
          ["Framework", app.framework ?? <span class="muted">—</span>],
          ["Last synced", <Time at={app.synced_at} relative="both" />],
          app.error === null ? null : ["Last error", <LastError app={app} />, "app-error"],
        ]}
      />
      <h3 class="app-functions">Functions</h3>
      {app.functions.length === 0 ? (
        <Empty>The app serves no functions.</Empty>
      ) : (
        <ul class="plain">
          {app.functions.map((fn) => (
            <li data-function-id={fn.id}>
              <a href={`/runs?function_id=${encodeURIComponent(fn.id)}`}>{fn.name}</a> <code class="muted">{fn.id}</code> <span class="muted">{triggersText(fn.triggers)}</span>
            </li>
          ))}
        </ul>
      )}
      <footer class="fn-foot">
        <div class="actions">
          <button type="button" data-action="sync-app" data-app-id={app.id} data-app-url={app.url}>
            Sync again
          </button>
          <button type="button" class="danger" data-action="remove-app" data-app-id={app.id}>
            Remove
          </button>
        </div>
        <Flash />
      </footer>
    </article>
  );
}

/** Why the last sync failed, and when. */
function LastError({ app }: { app: AppView }) {
  return (
    <>
      <p class="error-message">{app.error}</p>
      <span class="muted">
        <Time at={app.error_at} relative="both" />
      </span>
    </>
  );
}

/** A function's triggers as the SDK synced them: event names and cron schedules. */
function triggersText(triggers: unknown[]): string {
  return triggers
    .map((trigger) => {
      const entry = trigger as { event?: unknown; cron?: unknown };
      if (typeof entry.event === "string") return entry.event;
      if (typeof entry.cron === "string") return `cron ${entry.cron}`;
      return JSON.stringify(trigger);
    })
    .join(", ");
}
