import { callApi, isFinal, type DashboardContext, type EventView, type RunListing } from "./api.ts";
import { Facts, IdHeading, Json, RunsTable, Section, Time } from "./components.tsx";
import { errorPage, hasSession, Layout, renderPage } from "./layout.tsx";

/** `GET /events/:id`: one event, its payload as text, and the runs it started. */
export async function eventPage(c: DashboardContext): Promise<Response> {
  const id = c.req.param("eventId") ?? "";
  const path = `/v1/events/${encodeURIComponent(id)}`;
  const [event, runs] = await Promise.all([callApi<{ data: EventView }>(c, path), callApi<{ data: RunListing[] }>(c, `${path}/runs`)]);
  if (!event.ok) return errorPage(c, event, "events");
  const found = event.body.data;
  // The API lists an event's runs oldest first; the dashboard shows newest first everywhere.
  const started = runs.ok ? [...runs.body.data].reverse() : [];
  // Live until its runs have all ended; with none yet, for a few minutes (they may be on their way).
  const isRecent = Date.now() - Date.parse(found.received_at) < 5 * 60_000;
  const isSettled = started.length > 0 ? started.every((run) => isFinal(run.status)) : !isRecent;
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title={`Event ${found.name}`} active="events">
      <div class="page-head">
        <IdHeading id={found.id}>{found.name}</IdHeading>
      </div>
      <div class="two-col">
        <div class="stack-col">
          <Section title="Payload" id="payload">
            <Json value={found.data} id="event-data" />
          </Section>
          <Section title={`Runs it started (${started.length})`} id="event-runs">
            <div id="event-runs-live" data-live={isSettled ? undefined : "runs"} data-api={`${path}/runs`}>
              <RunsTable runs={started} showEvent={false} />
            </div>
          </Section>
        </div>
        <Section title="Event">
          <Facts
            facts={[
              ["Id", found.id, "mono"],
              ["Timestamp", <Time at={found.ts} />],
              ["Received", <Time at={found.received_at} />],
              found.v ? ["Version", found.v] : null,
              found.user ? ["User", <Json value={found.user} />] : null,
            ]}
          />
        </Section>
      </div>
    </Layout>,
  );
}
