// HTTP clients for the two Workers under test: Stepflare's event and REST APIs, and the
// comparison Worker's front (Workflows and the floor).

async function request(url, { method = "GET", body, timeoutMs = 120_000 } = {}) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { error: text };
  }
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${JSON.stringify(json).slice(0, 2000)}`);
  return json;
}

export function stepflareClient(url) {
  return {
    url,
    /** POST /e/bench with `events`; answers the event ids. */
    async send(events) {
      const { ids } = await request(`${url}/e/bench`, { method: "POST", body: events });
      return ids;
    },
    /** GET /v1/events/:id/runs: the runs an event started, as the REST API shows them. */
    async runsOfEvent(eventId) {
      const { data } = await request(`${url}/v1/events/${encodeURIComponent(eventId)}/runs`);
      return data;
    },
    /**
     * GET /bench/waits (the bench Worker's own route): how many open waits of `event` D1's waits
     * index holds whose match key starts with `keyPrefix`.
     */
    async waits(event, keyPrefix = "") {
      const { count } = await request(`${url}/bench/waits?event=${encodeURIComponent(event)}&key=${encodeURIComponent(keyPrefix)}`);
      return count;
    },
    /** GET /v1/usage: billable operations counted so far, or null if this version has no such route. */
    async usage() {
      try {
        return (await request(`${url}/v1/usage`)).data ?? null;
      } catch {
        return null;
      }
    },
  };
}

export function cfwfClient(url) {
  return {
    url,
    /** Creates instances of `workflow` (ONE_STEP, N_STEPS, FIRST_STEP, SLEEPER), createBatch 100 at a time. */
    create: (workflow, instances) => request(`${url}/wf/create`, { method: "POST", body: { workflow, instances } }),
    /** Each instance's { status, output, error }, by id. */
    async status(workflow, ids) {
      const { statuses } = await request(`${url}/wf/status`, { method: "POST", body: { workflow, ids } });
      return statuses;
    },
    /** `runs` new floor DOs each do `steps` durable steps; returns when all are done. */
    floorSteps: (tag, runs, steps) => request(`${url}/floor/steps`, { method: "POST", body: { tag, runs, steps } }),
    /** `runs` new floor DOs arm an alarm 1 s ahead; each alarm reports its lateness to the counter. */
    floorSleep: (tag, runs, counter) => request(`${url}/floor/sleep`, { method: "POST", body: { tag, runs, counter } }),
  };
}

/** Maps `items` through `fn` with at most `limit` in flight. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}
