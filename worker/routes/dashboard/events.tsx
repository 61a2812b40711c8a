import { callApi, type DashboardContext, type EventView, type Page, type RunListing } from "./api.ts";
import { Flash, FormActions, jsonPreview, Json, ListTable, PageTitle, Section, shortId, Time } from "./components.tsx";
import { errorPage, hasSession, Layout, renderPage } from "./layout.tsx";

const EXAMPLE_EVENT = `{
  "name": "demo/hello",
  "data": { "name": "Ada" }
}`;

/** `GET /events`: the event log newest first (optionally one name), and a form to send an event. */
export async function eventsPage(c: DashboardContext): Promise<Response> {
  const name = c.req.query("name")?.trim() || undefined;
  const cursor = c.req.query("cursor")?.trim() || undefined;
  const query = new URLSearchParams({ limit: "50" });
  if (name) query.set("name", name);
  if (cursor) query.set("cursor", cursor);
  const answer = await callApi<Page<EventView>>(c, `/v1/events?${query}`);
  if (!answer.ok) return errorPage(c, answer, "events");
  const runsByEvent = await runsOfEvents(c, answer.body.data);
  return renderPage(
    c,
    <Layout signedIn={hasSession(c)} title="Events" active="events">
      <PageTitle title="Events" />
      <SendEventForm />
      <Section title="Event log" id="event-log">
        <form class="filters" method="get" action="/events">
          <label>
            Name
            <input type="search" name="name" value={name ?? ""} placeholder="shop/order.placed" spellcheck={false} />
          </label>
          <div class="actions">
            <button type="submit">Filter</button>
            {name ? <a href="/events">All events</a> : null}
          </div>
        </form>
        <div id="events-live">
          <EventTable events={answer.body.data} runsByEvent={runsByEvent} />
        </div>
        <nav class="pager">
          {cursor ? <a href={name ? `/events?name=${encodeURIComponent(name)}` : "/events"}>← Newest</a> : null}
          {answer.body.next_cursor ? <a href={`/events?${new URLSearchParams({ ...(name ? { name } : {}), cursor: answer.body.next_cursor })}`}>Older →</a> : null}
        </nav>
      </Section>
    </Layout>,
  );
}

/**
 * "Send event": a JSON editor that app.js checks as it is typed (one event or an array of them, each
 * with a name and an object as data) and sends to `POST /v1/events`.
 */
function SendEventForm() {
  return (
    <Section title="Send event" id="send-event">
      <form data-form="send-event">
        <label class="muted" for="event-json">
          One event, or an array of events: <code>{'{ "name": string, "data"?: object, "id"?: string, "ts"?: number, "user"?: object }'}</code>
        </label>
        <textarea id="event-json" name="event" spellcheck={false} data-json="event" rows={6}>
          {EXAMPLE_EVENT}
        </textarea>
        <p class="hint" data-json-hint></p>
        <FormActions submit="Send">
          <Flash id="send-flash" />
        </FormActions>
      </form>
    </Section>
  );
}

const RUN_WINDOW_SLACK_MS = 60_000;

/**
 * The runs the listed events started, from one `GET /v1/runs` over the time the page spans (runs start
 * after their event arrives): not one request per event. A delayed run starting later than that, or
 * past the listing's limit, is found on the event's own page.
 */
async function runsOfEvents(c: DashboardContext, events: EventView[]): Promise<Map<string, RunListing[]>> {
  const byEvent = new Map<string, RunListing[]>();
  const times = events.map((event) => Date.parse(event.received_at));
  if (times.length === 0) return byEvent;
  const query = new URLSearchParams({
    started_after: new Date(Math.min(...times)).toISOString(),
    started_before: new Date(Math.max(...times) + RUN_WINDOW_SLACK_MS).toISOString(),
    limit: "500",
  });
  const answer = await callApi<Page<RunListing>>(c, `/v1/runs?${query}`);
  if (!answer.ok) return byEvent;
  for (const run of answer.body.data) byEvent.set(run.event_id, [...(byEvent.get(run.event_id) ?? []), run]);
  return byEvent;
}

/** The runs an event started, as links labelled with their function and coloured by status. */
function EventRuns({ event, runs }: { event: EventView; runs: RunListing[] | undefined }) {
  if (!runs?.length) {
    return (
      <a class="muted" href={`/events/${encodeURIComponent(event.id)}`} title="No run found near this event's time; its page lists every run it started">
        —
      </a>
    );
  }
  return (
    <span class="run-chips">
      {runs.map((run) => (
        <a href={`/runs/${encodeURIComponent(run.run_id)}`} title={`${run.function_id}: ${run.status}`} data-run-id={run.run_id}>
          <span class={`badge status-${run.status.toLowerCase()}`}>{run.function_id}</span>
        </a>
      ))}
    </span>
  );
}

function EventTable({ events, runsByEvent }: { events: EventView[]; runsByEvent: Map<string, RunListing[]> }) {
  return (
    <ListTable
      class="events"
      columns={["Received", "Name", "Id", "Payload", "Runs"]}
      items={events}
      empty="No events."
      row={(event) => (
        <tr data-event-id={event.id}>
          <td>
            <Time at={event.received_at} relative />
          </td>
          <td>
            <a href={`/events?name=${encodeURIComponent(event.name)}`}>{event.name}</a>
          </td>
          <td>
            <a class="mono" href={`/events/${encodeURIComponent(event.id)}`} title={event.id}>
              {shortId(event.id)}
            </a>
          </td>
          <td class="wrap">
            <details>
              <summary>
                <code>{jsonPreview(event.data, 60)}</code>
              </summary>
              <Json value={event.data} />
            </details>
          </td>
          <td>
            <EventRuns event={event} runs={runsByEvent.get(event.id)} />
          </td>
        </tr>
      )}
    />
  );
}
